"""The project's own SMB2 mutation fuzzer (issue 11): builders, seeds, mutators, engine.

`scripts/fuzz` is the command line; tests/fuzz/test_fuzz_smoke.py runs a short smoke of it
and tests/fuzz/test_corpus_replay.py replays every finding kept in tests/fuzz/corpus/.
"""
