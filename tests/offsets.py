"""Bytes at scattered offsets of a (sparse) volume file, for tests."""


def write_at(path, data, offsets):
    """Write ``data`` at each of ``offsets`` of the file ``path``."""
    with open(path, 'r+b') as f:
        for offset in offsets:
            f.seek(offset)
            f.write(data)


def read_at(path, offsets, length):
    """The ``length`` bytes at each of ``offsets``, as a list."""
    with open(path, 'rb') as f:
        result = []
        for offset in offsets:
            f.seek(offset)
            result.append(f.read(length))
        return result
