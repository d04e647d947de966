"""``make demo`` keeps working: its steps all pass, and it cleans up."""

import os
import re
import signal
import subprocess
import sys
import threading

STEPS = ('start EDF simulator', 'start glance-api', 'generate image file',
         'glance image-create --file', 'glance stores-info',
         'glance image-download', 'glance image-create-via-import',
         'ranged download (HTTP Range)', 'simulator holds both images',
         'glance image-delete (both)')


def test_demo_passes_every_step_and_leaves_nothing_running():
    result = subprocess.run(
        [sys.executable, '-m', 'datera_glance_dev.demo', '--size-mib', '24'],
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


def test_ctrl_c_stops_everything_the_demo_started():
    # A session of its own, so that the SIGINT goes to the whole process
    # group, as Ctrl-C in a terminal does (the simulator and any glance
    # client get it too).
    proc = subprocess.Popen(
        [sys.executable, '-m', 'datera_glance_dev.demo', '--size-mib', '8'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True)
    lines = []
    services_up = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(' ok   start glance-api'):
                services_up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert services_up.wait(180), ''.join(lines)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 130, ''.join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(10)
    out = ''.join(lines)
    assert 'interrupted' in out
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
