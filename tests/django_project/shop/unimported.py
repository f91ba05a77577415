"""Never imported: a stored job naming this module must make no worker nor
``get_result`` import it."""

raise AssertionError("tests.django_project.shop.unimported was imported")


def steal():
    return "stolen"
