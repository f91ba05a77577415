"""The examples of the original's API page (connector.queue.job), as written there, but
for the imports and the bodies it leaves to the reader (``# work`` and ``# ...``), which
record what they received. Imported by the tests and by their worker processes."""

from __future__ import annotations

import hashlib

from queuejob import RetryableJobError, job, related_action

_ = str  # Odoo's translation function in the page's related action
RECEIVED: list = []


@job
def export_one_thing(session, model_name, one_thing):
    # work
    # export one_thing
    RECEIVED.append((model_name, one_thing))
    return f"exported {one_thing}"


@job(default_channel='root.subchannel')
def export_one_thing_in_a_subchannel(session, model_name, one_thing):
    # work
    # export one_thing
    return f"exported {one_thing}"


@job(retry_pattern={1: 10 * 60,
                    5: 20 * 60,
                    10: 30 * 60,
                    15: 12 * 60 * 60})
def retryable_example(session):
    # 5 first retries postponed 10 minutes later
    # retries 5 to 10 postponed 20 minutes later
    # retries 10 to 15 postponed 30 minutes later
    # all subsequent retries postponed 12 hours later
    raise RetryableJobError('Must be retried later')


def related_action_partner(session, job):
    model = job.args[0]
    partner_id = job.args[1]
    # eventually get the real ID if partner_id is a binding ID
    action = {
        'name': _("Partner"),
        'type': 'ir.actions.act_window',
        'res_model': model,
        'view_type': 'form',
        'view_mode': 'form',
        'res_id': partner_id,
    }
    return action


@job
@related_action(action=related_action_partner)
def export_partner(session, model_name, partner_id):
    # ...
    return partner_id


def related_action_product(session, job, extra_arg=1):
    assert extra_arg == 2
    model = job.args[0]
    product_id = job.args[1]
    return model, product_id


@job
@related_action(action=related_action_product, extra_arg=2)
def export_product(session, model_name, product_id):
    # ...
    return product_id


def identity_example(job_):
    hasher = hashlib.sha1()
    hasher.update(str(job_.args).encode())  # the page's str() is bytes on Python 2
    hasher.update(str(job_.kwargs.get('foo', '')).encode())
    return hasher.hexdigest()
