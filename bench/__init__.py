"""``make bench``: kjobs' performance figures, measured in one run on one machine (issue 6).

Each module measures one group of figures and returns a plain dict: ``batch`` (durable step
throughput, step overhead, submit latency), ``baseline`` (the machine's limit for the same
durable rows), ``shell`` (real ``true`` steps, cancel latency), ``api`` (a real ``kjobs serve``),
``listing`` (100,000 stored jobs), ``streaming`` (10,000 streaming jobs), ``memory`` (idle RSS),
``simulation`` (the 24-hour scenario) and ``peers`` (the shared peer-engine harness).
``server`` starts ``kjobs serve`` and loads it, ``common`` holds the shared helpers, ``run``
orders the stages and ``report`` assembles the one JSON document and the terminal table.
"""
