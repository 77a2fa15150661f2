#!/usr/bin/env python3
"""check_dockerfile.py - is tools/docker/Dockerfile in step with the build?

Run by tests/test_compose.sh (no Docker engine needed); Debian 12 only
(dpkg, apt-cache, pkg-config).  Three checks, each derived from the
repository and this machine rather than from a list kept by hand:

 1. every top-level directory that CMakeLists.txt add_subdirectory()s for
    the image's build (not under if(AAS_BUILD_TESTS) / if(AAS_FUZZ): the
    image builds with -DAAS_BUILD_TESTS=OFF) is COPY'd into the build stage;
 2. every package of tools/packages.sh's AAS_PACKAGES that owns a file the
    CMake files look for (pkg_check_modules' .pc files, find_program,
    find_file, find_library, find_package CONFIG files, again outside the
    tests' and fuzzers' blocks) is installed by the build stage;
 3. every shared library the locally built aas-* programs link (ldd)
    belongs to a package that the runtime stage installs, or to one of
    their Depends / Pre-Depends (apt-cache depends --recurse): what the
    runtime stage's apt-get brings along.

Usage: check_dockerfile.py [BUILD_DIR]   (default build/; check 3 is
skipped, saying so, when no aas-* program is built there).  Exit 0 ok, 1
with one line per problem.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "tools", "docker", "Dockerfile")
# Blocks whose contents the image's build never reaches.
GATED = re.compile(r"\bAAS_(BUILD_TESTS|FUZZ)\b")


def run(*cmd):
    """stdout of cmd, or "" when it fails (a missing file, package)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.stdout if p.returncode == 0 else ""


def cmake_calls(path):
    """(command, args) of each call in a CMake file outside gated if()s."""
    text = open(path).read()
    text = re.sub(r"#[^\n]*", "", text)  # comments (no '#' inside our args)
    stack = []  # one bool per open if(): gated?
    for m in re.finditer(r"\b([A-Za-z_]+)\s*\(((?:[^()]|\([^()]*\))*)\)", text):
        cmd, args = m.group(1).lower(), m.group(2)
        if cmd == "if":
            stack.append(bool(GATED.search(args)))
        elif cmd == "endif":
            if stack:
                stack.pop()
        elif not any(stack):
            try:
                yield cmd, shlex.split(args, posix=True)
            except ValueError:  # C source in a string (check_c_source_compiles)
                continue


def cmake_files():
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = os.path.relpath(dirpath, ROOT)
        # Build trees and the tests (gated above, but walked only to skip).
        dirnames[:] = [d for d in dirnames
                       if not d.startswith((".", "build")) and not (rel == "." and d == "tests")]
        if "CMakeLists.txt" in filenames:
            out.append(os.path.join(dirpath, "CMakeLists.txt"))
    return out


def owners(paths):
    """{path: the Debian package that owns it (or its symlink's target)}, in
    one dpkg -S call; unowned paths are left out."""
    paths = [p for p in paths if p]
    query = sorted(set(paths) | {os.path.realpath(p) for p in paths})
    p = subprocess.run(["dpkg", "-S", *query], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True) if query else None
    found = {}
    for line in (p.stdout.splitlines() if p else []):
        if line.startswith("diversion ") or ": " not in line:
            continue
        pkgs, path = line.split(": ", 1)
        found.setdefault(path, pkgs.split(",", 1)[0].split(":", 1)[0])
    out = {}
    for q in paths:
        pkg = found.get(q) or found.get(os.path.realpath(q))
        if pkg:
            out[q] = pkg
    return out


def dockerfile_stages():
    """[(apt packages, COPY sources)] per stage of the Dockerfile."""
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            stages.append((set(), set()))
        elif not stages:
            continue
        elif line.startswith("RUN ") and "apt-get install" in line:
            for seg in line.split("&&"):
                if "apt-get install" in seg:
                    words = seg.split("apt-get install", 1)[1].split()
                    stages[-1][0].update(w for w in words if not w.startswith("-"))
        elif line.startswith("COPY ") and "--from" not in line:
            srcs = line.split()[1:-1]
            stages[-1][1].update(s.rstrip("/").lstrip("./").split("/")[0] for s in srcs)
    return stages


def aas_packages():
    out = run("bash", "-c", '. "$1" && printf "%s" "$AAS_PACKAGES"', "sh",
              os.path.join(ROOT, "tools", "packages.sh"))
    return set(out.split())


def needed_files():
    """(what, file) pairs for the files CMake looks for."""
    for path in cmake_files():
        for cmd, a in cmake_calls(path):
            if cmd == "pkg_check_modules":
                for mod in a[1:]:
                    if mod in ("REQUIRED", "QUIET", "IMPORTED_TARGET", "GLOBAL",
                               "NO_CMAKE_PATH", "NO_CMAKE_ENVIRONMENT_PATH"):
                        continue
                    name = re.split(r"[<>=]", mod, 1)[0]
                    d = run("pkg-config", "--variable=pcfiledir", name).strip()
                    yield f"pkg-config {name}", os.path.join(d, name + ".pc") if d else None
            elif cmd == "find_program" and len(a) >= 2:
                names = a[2:a.index("REQUIRED")] if a[1] == "NAMES" and "REQUIRED" in a \
                    else [a[1]]
                exe = next((run("sh", "-c", 'command -v "$1"', "sh", n).strip()
                            for n in names if run("sh", "-c", 'command -v "$1"', "sh", n)), None)
                yield f"program {names[0]}", exe
            elif cmd == "find_file" and "PATHS" in a:
                d = a[a.index("PATHS") + 1]
                yield f"file {a[1]}", os.path.join(d, a[1])
            elif cmd == "find_library" and "NAMES" in a:
                n = a[a.index("NAMES") + 1]
                hits = glob.glob(f"/usr/lib/*/lib{n}.so") + glob.glob(f"/usr/lib/lib{n}.so")
                yield f"library {n}", hits[0] if hits else None
            elif cmd == "find_package" and a and a[0] not in ("PkgConfig", "Threads"):
                n = a[0]
                hits = []
                for base in glob.glob("/usr/lib/*/cmake") + ["/usr/lib/cmake", "/usr/share/cmake"]:
                    for f in (f"{n}-config.cmake", f"{n}Config.cmake"):
                        hits += glob.glob(os.path.join(base, n, f))
                        hits += glob.glob(os.path.join(base, "*", f))
                yield f"package {n}", hits[0] if hits else None
            elif cmd == "find_package" and a and a[0] == "PkgConfig":
                yield "program pkg-config", run("sh", "-c", "command -v pkg-config").strip()


def main():
    errors, notes = [], []
    stages = dockerfile_stages()
    if len(stages) < 2:
        print(f"{DOCKERFILE}: expected a build and a runtime stage")
        return 1
    build_pkgs, build_copies = stages[0]
    runtime_pkgs = stages[-1][0]

    # 1. Directories the build adds are copied.
    for cmd, a in cmake_calls(os.path.join(ROOT, "CMakeLists.txt")):
        if cmd == "add_subdirectory" and a:
            top = a[0].split("/")[0]
            if top not in build_copies:
                errors.append(f"Dockerfile: add_subdirectory({a[0]}) but no COPY {top}/")

    # 2. Build packages.
    aas = aas_packages()
    if not aas:
        errors.append("tools/packages.sh: AAS_PACKAGES is empty")
    needs = list(needed_files())
    own = owners([f for _, f in needs])
    checked = set()
    for what, f in needs:
        pkg = own.get(f)
        if pkg in aas:
            checked.add(pkg)
        if not pkg:
            notes.append(f"{what}: not found here, so its package is unknown (not checked)")
        elif pkg in aas and pkg not in build_pkgs:
            errors.append(f"Dockerfile build stage: CMake needs {what} from {pkg} "
                          "(in AAS_PACKAGES), not installed")
    notes.append("build packages CMake needs, of AAS_PACKAGES: " + " ".join(sorted(checked)))

    # 3. Runtime libraries.
    bdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    progs = sorted(p for p in glob.glob(os.path.join(bdir, "*", "aas-*"))
                   if os.path.isfile(p) and os.access(p, os.X_OK))
    if not progs:
        notes.append(f"runtime libraries: no aas-* program built in {bdir} (not checked)")
    else:
        closure = set(runtime_pkgs)
        out = run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                  "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                  *sorted(runtime_pkgs))
        if not out:
            errors.append("apt-cache depends failed on the runtime stage's packages")
        for line in out.splitlines():
            s = line.strip()
            if not line.startswith(" "):
                closure.add(s.split(":", 1)[0])
            elif s.startswith(("Depends:", "PreDepends:", "|Depends:", "|PreDepends:")):
                closure.add(s.split(":", 1)[1].strip().strip("<>").split(":", 1)[0])
        libs = {}
        # A sanitizer build (CI's build-asan) links the sanitizer runtimes,
        # which the image's Release build does not.
        sanitizer = re.compile(r"/lib(asan|ubsan|lsan|tsan|hwasan)\.so")
        for p in progs:
            for m in re.finditer(r"=>\s+(\S+)\s+\(", run("ldd", p)):
                if sanitizer.search(m.group(1)):
                    continue
                libs.setdefault(m.group(1), os.path.basename(p))
            if "not found" in run("ldd", p):
                errors.append(f"{p}: ldd reports a library not found")
        own = owners(list(libs))
        for lib, prog in sorted(libs.items()):
            pkg = own.get(lib)
            if not pkg:
                errors.append(f"{prog} links {lib}, which no Debian package owns")
            elif pkg not in closure:
                errors.append(f"Dockerfile runtime stage: {prog} links {lib} from {pkg}, "
                              "neither installed nor a dependency of what is")
        notes.append(f"runtime libraries: {len(libs)} libraries of {len(progs)} programs "
                     f"checked against {len(closure)} packages")

    for n in notes:
        print(f"note: {n}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
