"""Model-space differential fuzzing: random models, adversarial rows, the real CLI vs Pydantic.

``spec`` describes a model and writes it as Python source; ``models`` draws specs (hypothesis);
``values`` and ``rows`` make adversarial inputs for a spec; ``oracle`` is Pydantic's verdict;
``cli_run`` runs ``cli.py run`` and reads the DuckDB file back; ``compare`` lists divergences;
``cases`` shrinks a failure and saves it as a regression case.
"""
