"""Pieces of ``make demo`` that can be checked without running it."""

import io

import pytest

from datera_glance_dev import demo

TABLE = """\
+------------------+----------------------------------------------------------------------------------+
| Property         | Value                                                                            |
+------------------+----------------------------------------------------------------------------------+
| checksum         | 8aa7f1da5ad1c18926bc4812851e5eaa                                                 |
| id               | 3ccad49f-bef4-47ea-bb63-f5d12c12c757                                             |
| os_hash_value    | 3815296bc14105e0b158257d4dfdb58322bdce9f5918e7c3f0b8ced2dbc9c40b5be8070b3f059b16 |
|                  | 093c4cb2b3d0fe19344a1f54450346173992ae3b707d4ad0                                 |
| size             | 10000000                                                                         |
+------------------+----------------------------------------------------------------------------------+
"""  # noqa: E501


def test_parse_table_joins_wrapped_values():
    values = demo.parse_table(TABLE)
    assert values['id'] == '3ccad49f-bef4-47ea-bb63-f5d12c12c757'
    assert values['os_hash_value'] == (
        '3815296bc14105e0b158257d4dfdb58322bdce9f5918e7c3f0b8ced2dbc9c40b'
        '5be8070b3f059b16093c4cb2b3d0fe19344a1f54450346173992ae3b707d4ad0')
    assert values['size'] == '10000000'
    assert 'Property' not in values


def image(**overrides):
    values = {'status': 'active', 'size': '10', 'checksum': 'md5',
              'os_hash_algo': 'sha512', 'os_hash_value': 'sha',
              'stores': demo.BACKEND}
    values.update(overrides)
    return values


def test_check_image_accepts_a_matching_image():
    demo.check_image(image(), 'md5', 'sha', 10)


@pytest.mark.parametrize('overrides', [
    {'status': 'queued'}, {'size': '11'}, {'checksum': 'other'},
    {'os_hash_value': 'other'}, {'stores': 'file1'},
])
def test_check_image_rejects_any_difference(overrides):
    with pytest.raises(demo.DemoFailure):
        demo.check_image(image(**overrides), 'md5', 'sha', 10)


def test_report_lines_show_size_time_and_throughput():
    out = io.StringIO()
    report = demo.Report(out)
    report.step('glance image-download', 64 * demo.MiB, 2.0, 'matches')
    report.begin('glance image-delete')
    report.fail('boom')
    first, second = out.getvalue().splitlines()
    assert first.startswith(' ok   glance image-download')
    assert '64.0 MiB' in first and '2.00 s' in first
    assert '32.0 MiB/s' in first and first.endswith('matches')
    assert second.startswith(' FAIL glance image-delete')
    assert second.endswith('boom') and report.failed
