"""Point the ROS 2 wheels' exported CMake files at this interpreter's include dirs.

The ros-kilted-* wheels are built under /opt/python/cp311-cp311 and their
``*__rosidl_generator_pyExport.cmake`` files keep that builder's Python and NumPy
include paths. CMake refuses imported targets whose include dirs do not exist
("Imported target ... includes non-existent path"), so building any interface
package against the wheels fails until the paths are rewritten. Idempotent.
"""
import pathlib
import re
import sys
import sysconfig

import numpy

PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+m?/include/python3\.\d+")
NUMPY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+m?/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")


def fix(prefix: pathlib.Path) -> int:
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for cmake_file in (prefix / "share").rglob("*.cmake"):
        text = cmake_file.read_text()
        if "/opt/python/" not in text:
            continue
        new = NUMPY_INCLUDE.sub(numpy_include, PYTHON_INCLUDE.sub(python_include, text))
        if new != text:
            cmake_file.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    prefix = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"fix_ros_wheel_cmake: rewrote {fix(prefix)} CMake files under {prefix}/share")
