"""``ragline eval answers``: answer quality, retrieval and latency of a running ragline,
measured at the client over its HTTP API, on a question set shipped in
``ragline/evaluation/datasets/`` (``dataset``: the question files; ``metrics``: token F1,
contains-match, hit@5; ``client``: the HTTP calls; ``run``: the evaluation's flow;
``report``: figures, JSON and the table)."""
