"""Set Django up in a ``queuejob worker`` process (``DJANGO_SETTINGS_MODULE`` set)::

    queuejob worker --db URL --module queuejob.contrib.django.bootstrap --module shop.tasks

Importing this module runs ``django.setup()`` and imports the task modules of the
settings, so that Django tasks register as job functions; the worker still runs only
those of the ``--module`` modules it is given. ``python manage.py queuejob_worker``
does all this, and finds the database URL and the modules itself.
"""

import django

django.setup()

from .backend import import_task_modules, task_modules  # noqa: E402

import_task_modules(task_modules())
