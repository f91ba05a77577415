-- PostgreSQL's migration 0005 makes the database refuse infinite times and numbers that
-- its readers could not use. SQLite stores any value in any column and its REAL times
-- are always readable: here the readers check each value (queuejob.core.rows) and a bad
-- one costs its row only. Nothing to change; the version keeps both dialects in step.
SELECT 1;
