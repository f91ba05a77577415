"""The store: the one owner of SQL names and rows.

``JobStore`` runs every write to the queue (and the reads the worker needs),
``JobReads`` the read models of the faces, ``mapping`` turns rows into jobs and back.
Nothing else in queuejob names a query.
"""

from .jobs import ClaimSnapshot, JobStore, KnownClaim, RescueReport
from .reads import JOB_SORTS, JobFilter, JobPage, JobReads

__all__ = ["JOB_SORTS", "ClaimSnapshot", "JobFilter", "JobPage", "JobReads", "JobStore",
           "KnownClaim", "RescueReport"]
