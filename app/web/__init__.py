"""The HTTP faces: one thin blueprint module per endpoint family. Each validates at the
edge and hands canonical logs to the pipeline (`app.pipeline`); none holds storage logic."""
