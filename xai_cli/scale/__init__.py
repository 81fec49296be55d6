"""Running past one device and one machine: engine processes per device (devices.py) and Ray (ray_backend.py).

Shards need nothing here: a shard is a part of the inputs (core/shard.py) and parts of the
files sink's outputs (sinks/files/merge.py).
"""
