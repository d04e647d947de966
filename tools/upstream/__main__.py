#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""``python -m tools.upstream generate|check`` (run from the repository).

generate
    writes build/upstream/glance_store/*.patch and build/upstream/glance/
    *.patch (``make upstream``)
check
    applies them to fresh unpacks of the pinned sdists and runs the
    projects' own tests and linters on what they change
    (``make upstream-check``)
"""

import argparse
import os
import sys

from tools.upstream import check
from tools.upstream import series
from tools.upstream import transform


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.upstream',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('generate', 'check'))
    parser.add_argument('--root', default=os.getcwd(),
                        help='the repository (default: the current folder)')
    args = parser.parse_args(argv)
    paths = series.Paths(os.path.abspath(args.root), sys.executable)
    if args.command == 'check':
        return check.main(paths)
    try:
        written = series.generate(paths)
    except transform.TransformError as e:
        print('make upstream: %s' % e, file=sys.stderr)
        return 1
    for project, patches in written.items():
        for patch in patches:
            print(os.path.relpath(patch, paths.root))
    return 0


if __name__ == '__main__':
    sys.exit(main())
