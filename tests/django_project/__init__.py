"""A small Django project for the tests of queuejob.contrib.django (settings, the shop
app with its tasks and views, urls, manage.py)."""
