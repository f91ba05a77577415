"""Integrations of queuejob with frameworks (``queuejob.contrib.django``: a backend for
Django's Tasks framework). Recipes for other frameworks are in docs/integrations.md."""
