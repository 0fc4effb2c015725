"""`nox -s signoff`: the release checklist, every item decided from evidence.

An item's verdict is one of:

- `pass`: the evidence shows the item holds;
- `fail`: the evidence shows it does not, or the evidence is missing (the line
  says which file and which session makes it);
- `insufficient`: the evidence is real but too little (a 2-minute soak where 24 h
  are required, a bench without its 10 GiB case);
- `not verifiable here`: this host cannot produce the evidence (macOS cells, a
  security advisory database, a code review). Never counted as passed.

Modules: `verdict` (the vocabulary), `context` (where evidence lives, how
commands run), one `checks_*` module per kind of evidence, `checklist` (the
ordered items), `render` (SIGNOFF.md and signoff.json), `cli`; and the
producers of evidence the other sessions do not make: `coverage_run`
(coverage-report/), `wheels` (release-report/wheels.json), `merge` (one matrix
report from several GitHub runners).
"""
