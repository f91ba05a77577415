"""queuejob's tables in the databases that queuejob task backends use.

queuejob applies its own SQL migrations (the same as ``queuejob.open`` does), outside
Django's transaction so that they take queuejob's migration lock. Databases that no
queuejob backend uses are left alone.
"""

from django.db import migrations


def create_tables(apps, schema_editor):
    from queuejob.contrib.django.backend import migrate, queuejob_backends

    alias = schema_editor.connection.alias
    if any(backend.database_alias == alias for backend in queuejob_backends()):
        migrate(alias)


class Migration(migrations.Migration):
    atomic = False
    initial = True
    dependencies: list = []
    operations = [migrations.RunPython(create_tables, migrations.RunPython.noop,
                                       elidable=False)]
