"""``make demo`` keeps working: its steps all pass, and it cleans up."""

import os
import re
import subprocess
import sys

STEPS = ('start EDF simulator', 'start glance-api', 'generate image file',
         'glance image-create --file', 'glance stores-info',
         'glance image-download', 'glance image-create-via-import',
         'ranged download (HTTP Range)', 'simulator holds both images',
         'glance image-delete (both)')


def test_demo_passes_every_step_and_leaves_nothing_running():
    result = subprocess.run(
        [sys.executable, '-m', 'datera_glance.cmd.demo', '--size-mib', '24'],
        capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for step in STEPS:
        assert re.search(r'^ ok   %s ' % re.escape(step), out, re.M), step
    assert 'FAIL' not in out
    assert 'No app instances.' in out
    assert out.rstrip().endswith('All steps passed.')
    work_dir = re.search(r'work folder (\S+)\)', out).group(1)
    assert not os.path.exists(work_dir)
    assert processes_using(work_dir) == []


def processes_using(folder):
    """Processes whose command line or working folder is in ``folder``."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                raw = f.read()
            cmdline = raw.replace(b'\0', b' ').decode('utf-8', 'replace')
            cwd = os.readlink('/proc/%s/cwd' % pid)
        except OSError:
            continue  # gone, or not ours to look at
        if folder in cmdline or cwd.startswith(folder):
            found.append((pid, cmdline))
    return found
