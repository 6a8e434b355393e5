"""Receivers: the shippers' wire formats turned into items for `app.pipeline.intake`.

One module per protocol (syslog framing, Heroku logplex, Loki push, Elasticsearch
`_bulk`, OTLP logs), each a pure adapter: bytes in, LogSchema-shaped dicts (or
`intake.Invalid` for what could not be decoded) out. No Flask here; the HTTP faces in
`app/web/` and the syslog listener call these and then the one enqueue path.
"""
