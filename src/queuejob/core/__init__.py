"""The pure core of queuejob: the job model, its rules and its encodings.

Nothing in this package does I/O: no database, no threads, no clock other than
the one passed in. Every rule of the queue lives here once, and the backends,
the worker and the faces call it.
"""
