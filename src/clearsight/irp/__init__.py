"""Image restoration potential (IRP): labels from a pool of restorers, prediction, ranking and frame selection.

See ``docs/irp.md`` for the definitions and :mod:`clearsight.degrade.capture` for the capture simulator.
"""
