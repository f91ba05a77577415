"""The examples of the original's API page run as written there (tests/seed_examples.py),
on both backends: the argument convention of connector 9.0, where a job's arguments
begin with its model name and the function is called as ``func(session, *job.args)``."""

from __future__ import annotations

import queuejob
from queuejob.core.retry import RETRY_INTERVAL
from tests import seed_examples
from tests.helpers import load, row
from tests.reliability.common import sql


def burst(db):
    queuejob.Worker(db, channels="root:4", modules=["tests.seed_examples"]).run(burst=True)


def test_delay_runs_the_function_with_the_model_name_first(db):
    with db.session() as session:
        now = seed_examples.export_one_thing.delay(session, 'a.model', 'the thing')
        later = seed_examples.export_one_thing.delay(session, 'a.model', 'the thing',
                                                     priority=30, eta=60 * 60 * 5)
    # a normal and synchronous function call
    assert seed_examples.export_one_thing(None, 'a.model', 'direct') == "exported direct"
    burst(db)
    assert row(db, now)["result"] == "exported the thing"
    job = load(db, later)
    assert (job.state, job.priority, job.args, job.model_name) == \
        ("pending", 30, ("a.model", "the thing"), "a.model")
    sub = seed_examples.export_one_thing_in_a_subchannel
    with db.session() as session:
        in_subchannel = sub.delay(session, 'a.model', 1)
    assert load(db, in_subchannel).channel == "root.subchannel"


def test_the_retryable_example_runs_with_the_session_alone(db):
    with db.session() as session:
        job_uuid = seed_examples.retryable_example.delay(session)
    burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.retry, job.args, job.model_name) == ("pending", 1, (), None)
    assert job.result == "Must be retried later"
    waited = (job.eta - db.read(db.store.database_now)).total_seconds()
    assert 10 * 60 - 30 <= waited <= 10 * 60  # the pattern's first step, not RETRY_INTERVAL's
    assert RETRY_INTERVAL == 10 * 60


def test_the_related_actions_read_the_model_and_the_record_from_the_arguments(db):
    with db.session() as session:
        partner = seed_examples.export_partner.delay(session, 'res.partner', 42)
        product = seed_examples.export_product.delay(session, 'product.product', 7)
    with db.session() as session:
        storage = queuejob.DatabaseJobStorage(session)
        action = storage.load(partner).related_action(session)
        assert (action['res_model'], action['res_id'], action['type']) == \
            ('res.partner', 42, 'ir.actions.act_window')
        assert storage.load(product).related_action(session) == ('product.product', 7)
    assert queuejob.operations.related_action(db, partner)['res_id'] == 42


def test_the_identity_example_and_identity_exact_see_the_model_name(db):
    with db.session() as session:
        first = seed_examples.export_one_thing.delay(
            session, 'a.model', 1, identity_key=seed_examples.identity_example)
        again = seed_examples.export_one_thing.delay(
            session, 'a.model', 1, identity_key=seed_examples.identity_example)
        other_model = seed_examples.export_one_thing.delay(
            session, 'b.model', 1, identity_key=queuejob.identity_exact)
        same_exact = seed_examples.export_one_thing.delay(
            session, 'b.model', 1, identity_key=queuejob.identity_exact)
    assert first == again and other_model == same_exact and first != other_model


def test_jobs_stored_before_the_convention_run_as_they_did(db, db_url):
    """Migration 0006: a job stored when the model name was kept apart from the
    arguments (``func(session, model_name, *args)``) runs with the same call."""
    with db.session() as session:
        modelled = seed_examples.export_one_thing.delay(session, 'a.model', 'old')
        unnamed = seed_examples.export_one_thing.delay(session, None, 'older')
    # as the previous schema stored them: the arguments without the model name
    sql(db, "UPDATE queue_job SET args = ? WHERE uuid = ?", ('["old"]', modelled))
    sql(db, "UPDATE queue_job SET args = ? WHERE uuid = ?", ('["older"]', unnamed))
    sql(db, "DELETE FROM queuejob_migration WHERE version = 6")
    db.migrate()
    assert row(db, modelled)["args"] == '["a.model","old"]'
    assert row(db, unnamed)["args"] == '[null,"older"]'
    seed_examples.RECEIVED.clear()
    burst(db)
    assert sorted(seed_examples.RECEIVED, key=str) == [('a.model', 'old'), (None, 'older')]
