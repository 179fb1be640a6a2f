"""Output serializers rendered by a reused instance.

DRF builds a serializer's fields per instance: a deep copy of every declared field, about a
millisecond for the 20-field email resource, paid on each single send. An output serializer
that needs no context can render any number of objects with one instance; one per thread,
because DRF binds fields to their serializer lazily.
"""

import threading

_local = threading.local()


class ReusableOutput:
    # For context-free output serializers: ``EmailOutput.render(email)``. (No docstring: the
    # schema generator would take it as every subclass's description.)

    @classmethod
    def render(cls, instance) -> dict:
        serializers = _local.__dict__.setdefault("serializers", {})
        serializer = serializers.get(cls)
        if serializer is None:
            serializer = serializers[cls] = cls()
        return serializer.to_representation(instance)
