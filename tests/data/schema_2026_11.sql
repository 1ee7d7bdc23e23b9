-- The schema of a database created by the migrations of 2026-11 (before the stage store modules), as
-- sqlite_master holds it; tests/test_store.py opens a database made from it and checks nothing changes.
CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL);
CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY, provider TEXT, model TEXT,
            request TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, stage TEXT, role TEXT, provider TEXT, model TEXT,
            cache_key TEXT, cached INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
            latency_s REAL, cost_usd REAL, error TEXT);
CREATE INDEX llm_calls_stage ON llm_calls(stage, model);
CREATE TABLE data_checkpoints (
            job TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (job, key));
CREATE TABLE answers (
            candidate_id TEXT NOT NULL, evalset TEXT NOT NULL, question_id TEXT NOT NULL, candidate TEXT,
            model TEXT, adapter TEXT, system_prompt TEXT, temperature REAL, top_p REAL, max_tokens INTEGER,
            question TEXT NOT NULL, answer TEXT NOT NULL, output_tokens INTEGER, error TEXT, created REAL NOT NULL,
            PRIMARY KEY (candidate_id, evalset, question_id));
CREATE TABLE judge_cache (
            key TEXT PRIMARY KEY, judge TEXT NOT NULL, verdict TEXT NOT NULL, scores TEXT, raw TEXT, error TEXT,
            created REAL NOT NULL);
CREATE TABLE judge_results (
            id INTEGER PRIMARY KEY, created REAL NOT NULL, evalset TEXT NOT NULL,
            candidate TEXT NOT NULL, candidate_id TEXT NOT NULL, reference TEXT NOT NULL, reference_id TEXT NOT NULL,
            judges TEXT NOT NULL, rubric TEXT NOT NULL, n INTEGER, wins INTEGER, ties INTEGER, losses INTEGER,
            errors INTEGER, win_rate REAL, ci_low REAL, ci_high REAL, tie_share REAL, consistency REAL,
            mean_len_candidate REAL, mean_len_reference REAL, lc_win_rate REAL, config_id TEXT, judge_config TEXT, fact_recall REAL, fact_recall_low REAL, fact_recall_high REAL, refusal_accuracy REAL, grounded TEXT);
CREATE INDEX judge_results_candidate ON judge_results(candidate, reference, evalset);
CREATE TABLE judgments (
            result_id INTEGER NOT NULL REFERENCES judge_results(id), question_id TEXT NOT NULL,
            judge TEXT NOT NULL, judge_order TEXT NOT NULL, verdict TEXT NOT NULL, winner TEXT NOT NULL,
            cache_key TEXT NOT NULL, cached INTEGER NOT NULL, error TEXT);
CREATE INDEX judgments_result ON judgments(result_id, question_id);
CREATE TABLE arena_items (
            question_id TEXT NOT NULL, candidate TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
            source TEXT, created REAL NOT NULL, PRIMARY KEY (question_id, candidate));
CREATE TABLE arena_voters (
            id TEXT PRIMARY KEY, csrf TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('audience', 'judge')),
            created REAL NOT NULL);
CREATE TABLE arena_ballots (
            id TEXT PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), question_id TEXT NOT NULL,
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX arena_ballots_voter ON arena_ballots(voter_id);
CREATE TABLE arena_votes (
            id INTEGER PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), role TEXT NOT NULL,
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL CHECK (cand_1 < cand_2),
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL,
            choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'bad')),
            winner TEXT, ballot_id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
            UNIQUE (voter_id, question_id, cand_1, cand_2));
CREATE INDEX arena_votes_pair ON arena_votes(question_id, cand_1, cand_2);
CREATE TABLE arena_llm_verdicts (
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL, winner TEXT, judge TEXT,
            created REAL NOT NULL, PRIMARY KEY (question_id, cand_1, cand_2));
CREATE TABLE train_runs (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, dataset TEXT, base_model TEXT, hyperparameters TEXT,
            train_loss REAL, eval_loss REAL, overfit_flag INTEGER NOT NULL DEFAULT 0, overfit_reason TEXT,
            overfit_epoch REAL, error TEXT, sweep TEXT, created REAL, updated REAL);
CREATE TABLE train_metrics (
            run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, split TEXT NOT NULL, loss REAL,
            learning_rate REAL);
CREATE INDEX train_metrics_run ON train_metrics(run_id, split, step);
CREATE INDEX judge_results_config ON judge_results(config_id, reference, evalset);
CREATE TABLE arena_invites (
            code TEXT PRIMARY KEY, role TEXT NOT NULL, voter_id TEXT, created REAL NOT NULL, used REAL);
INSERT INTO _migrations (name, applied) VALUES ('m001_llm_cache', 0);
INSERT INTO _migrations (name, applied) VALUES ('m002_llm_calls', 0);
INSERT INTO _migrations (name, applied) VALUES ('m101_data_checkpoints', 0);
INSERT INTO _migrations (name, applied) VALUES ('m301_evaluate', 0);
INSERT INTO _migrations (name, applied) VALUES ('m401_arena', 0);
INSERT INTO _migrations (name, applied) VALUES ('m201_train_runs', 0);
INSERT INTO _migrations (name, applied) VALUES ('m202_train_metrics', 0);
INSERT INTO _migrations (name, applied) VALUES ('m302_judge_configs', 0);
INSERT INTO _migrations (name, applied) VALUES ('m402_arena_invites', 0);
