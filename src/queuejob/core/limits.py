"""Limits on what a job stores: checked where it is written, relied on where it is read.

``delay()`` refuses a job whose text is over its limit (``JobDataTooLargeError``, which
names the field and the limit); results and tracebacks are cut to their limit with a
marker saying so; list pages and tables show at most ``LISTED`` characters of a text.
Every number is in characters of text, but the arguments' (bytes of UTF-8).
"""

from __future__ import annotations

from .errors import JobDataTooLargeError

#: the encoded positional and keyword arguments together (bytes; ``max_args_size`` of
#: ``queuejob.open`` changes it)
ARGUMENTS = 1024 * 1024
#: the session context stored with the job (encoded)
CONTEXT = 64 * 1024
DESCRIPTION = 4096
MODEL_NAME = 512
IDENTITY_KEY = 1024
#: a channel's full dotted name, and a job function's ``module.qualname``
CHANNEL = 512
FUNC_NAME = 512
#: the stored result and traceback (longer ones are cut, with a marker)
RESULT = 64 * 1024
EXC_INFO = 64 * 1024
#: a concurrency key (a customer, a tenant... whose jobs share a capacity)
CONCURRENCY_KEY = 255
#: a subscription's target: a webhook URL, or a job function's name
TARGET = 2048
#: a progress report's message
PROGRESS_MESSAGE = 500
#: what one attempt's log keeps: lines, characters in all, characters of one line
LOG_LINES = 500
LOG_CHARS = 64 * 1024
LOG_LINE = 2000
#: how much of one text a list page or a table row shows
LISTED = 300
#: the deepest nesting of job arguments (deeper ones are refused at ``delay()``)
NESTING = 100

#: field name -> limit, for the text fields checked at ``delay()``
FIELDS = {"description": DESCRIPTION, "model_name": MODEL_NAME,
          "identity_key": IDENTITY_KEY, "channel": CHANNEL, "func_name": FUNC_NAME,
          "context": CONTEXT, "concurrency_key": CONCURRENCY_KEY}


def check(field: str, value: str | None) -> str | None:
    """``value`` if it is within its field's limit and storable as text;
    JobDataTooLargeError over the limit, ValueError for a text no database stores (a
    NUL character, PostgreSQL refuses it; a lone surrogate, not UTF-8)."""
    if value is None:
        return value
    if len(value) > FIELDS[field]:
        raise JobDataTooLargeError(
            f"job {field} is {len(value)} characters, over the limit of {FIELDS[field]}")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"job {field} contains a NUL character, which cannot be stored")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ValueError(f"job {field} is not valid text (a lone surrogate), "
                                 "which cannot be stored") from None
    return value
