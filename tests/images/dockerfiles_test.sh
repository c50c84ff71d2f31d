#!/usr/bin/env bash
# Checks docker/*.Dockerfile against the CMake build, without a Docker engine.
#
# Usage: tests/images/dockerfiles_test.sh BUILD_DIR
#
# For each Dockerfile:
#   - the build stage (`FROM debian:bookworm AS build`) installs every package
#     of scripts/deps.sh, except those its own CMake options make unneeded
#     (libtorch-dev with -DBRAID_WITH_TORCH=OFF; the test-only packages,
#     TEST_ONLY below, with -DBRAID_BUILD_TESTS=OFF);
#   - every `COPY --from=build /src/build/bin/X ...` names a CMake target of
#     BUILD_DIR (`cmake --build BUILD_DIR --target help`) that the build stage
#     builds (`--target X`), and the ENTRYPOINT runs one of them;
#   - the runtime stage (the last FROM) runs as USER 65532:65532;
#   - for each X built in BUILD_DIR/bin: the runtime stage's `apt-get install`
#     names the Debian package of every library X links directly (readelf
#     NEEDED; libc6 and libgcc-s1 come with the base image), every library
#     `ldd` loads belongs to a package those pull in (their Depends and
#     Pre-Depends, as installed on this machine), and it names no package X
#     does not link.
# Package names come from this machine's dpkg, so the check means what it says
# on Debian 12 (bookworm), the Dockerfiles' base.
# A worker Dockerfile is skipped when BUILD_DIR was configured with
# BRAID_WITH_TORCH=OFF (there is no braid-worker to compare with).
# Exits 0 when every check holds, 1 naming each Dockerfile and what is missing,
# 2 on bad usage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "${HERE}/../.." && pwd)

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" ]]; then
  echo "usage: $0 BUILD_DIR   (a configured CMake build tree)" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
for tool in dpkg dpkg-query readelf ldd cmake; do
  command -v "${tool}" >/dev/null || { echo "dockerfiles_test: needs ${tool} on PATH" >&2; exit 2; }
done

# Packages of scripts/deps.sh that only tests use: a build stage configured
# with -DBRAID_BUILD_TESTS=OFF need not install them. Add a test-only
# dependency here when you add it to scripts/deps.sh.
TEST_ONLY=(libgtest-dev libgmock-dev curl openssl
  python3-torch python3-venv python3-numpy python3-jinja2  # the reference stack (scripts/pyref.sh)
  clang libclang-rt-14-dev                  # make sanitize / make fuzz
  chromium                                  # the browser tests
  libopenblas0-openmp                       # BLAS for LibTorch at run time, not to build
  ccache)                                   # faster rebuilds; CMake uses it when present

# Packages a runtime stage may install though no program links them: they
# provide a library other packages load through Debian's alternatives
# (libopenblas0-openmp becomes the libblas.so.3 that libtorch loads).
RUNTIME_ALTERNATIVES=(libopenblas0-openmp)

# Packages the base image (debian:bookworm-slim) already has and that need not
# be named: the C library and the GCC runtime every C++ program links.
BASE_PACKAGES=(libc6 libgcc-s1)

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# --- Dockerfile parsing ------------------------------------------------------

# logical_lines FILE: the Dockerfile with continuation lines joined and
# comments dropped, one instruction per line.
logical_lines() {
  sed -e '/^[[:space:]]*#/d' "$1" | awk '
    { line = line $0 }
    /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, " ", line); next }
    { print line; line = "" }
    END { if (line != "") print line }'
}

# stage FILE WHICH: the instructions of the build stage (WHICH=build, the
# stage `AS build`) or of the runtime stage (WHICH=runtime, the last FROM).
stage() {
  logical_lines "$1" | awk -v which="$2" '
    toupper($1) == "FROM" {
      n++
      build = (tolower($0) ~ /[[:space:]]as[[:space:]]+build[[:space:]]*$/)
      if (which == "runtime") { out = "" }
      keep = (which == "build") ? build : 1
      next
    }
    which == "build" && keep { print; next }
    which == "runtime" { out = out $0 "\n" }
    END { if (which == "runtime") printf "%s", out }'
}

# installed_by INSTRUCTIONS: the package names of every `apt-get install` in
# the given RUN lines (words after `install` that are not options, up to the
# end of that command).
installed_by() {
  awk '{
    for (i = 1; i <= NF; i++) {
      if ($i == "install" && $(i - 1) ~ /apt(-get)?$/) {
        for (j = i + 1; j <= NF; j++) {
          if ($j == "&&" || $j == ";" || $j == "||" || $j ~ /;$/) break
          if ($j ~ /^-/) continue
          print $j
        }
      }
    }
  }' <<<"$1" | sed 's/[=:].*//' | sort -u
}

# deps_sh_packages: the packages=( ... ) list of scripts/deps.sh.
deps_sh_packages() {
  sed -n '/^packages=(/,/^)/p' "${REPO}/scripts/deps.sh" | sed -e '1d;$d' -e 's/#.*//' | tr -s ' \t' '\n' |
    sed '/^$/d' | sort -u
}

# --- dpkg helpers ------------------------------------------------------------

# packages_of_files FILE...: "file<TAB>package" for each file dpkg knows,
# trying the path as given, its real path, and both with /usr added or removed
# (Debian 12 is usrmerged; dpkg records whichever path the package ships).
packages_of_files() {
  local f i cands=() p c real=()
  declare -A origin=()
  mapfile -t real < <(readlink -f "$@")  # one line per argument, in order
  i=0
  for f in "$@"; do
    for p in "${f}" "${real[i]:-${f}}"; do
      for c in "${p}" "${p#/usr}" "/usr${p}"; do
        cands+=("${c}")
        origin["${c}"]+="${f} "
      done
    done
    i=$((i + 1))
  done
  # dpkg -S prints "pkg[:arch][, pkg2...]: path" for each path it finds.
  { dpkg -S "${cands[@]}" 2>/dev/null || true; } | { grep -v '^diversion' || true; } |
    while IFS= read -r line; do
    local path=${line#*: } pkg=${line%%: *}
    pkg=${pkg%%,*}
    pkg=${pkg%%:*}
    for f in ${origin["${path}"]:-}; do printf '%s\t%s\n' "${f}" "${pkg}"; done
  done | sort -u -t$'\t' -k1,1
}

# load_packages: INSTALLED[pkg]=1 for each installed package, and
# PROVIDER[virtual]="pkg..." from their Provides.
declare -A PROVIDER=() INSTALLED=()
load_packages() {
  local status pkg provides p
  while IFS=$'\t' read -r status pkg provides; do
    [[ "${status}" == "install ok installed" ]] || continue
    INSTALLED["${pkg}"]=1
    [[ -n "${provides}" ]] || continue
    for p in ${provides//,/ }; do
      [[ "${p}" == \(* || "${p}" == *\) || "${p}" == "=" ]] && continue
      PROVIDER["${p%%:*}"]+="${pkg} "
    done
  done < <(dpkg-query -W -f='${Status}\t${Package}\t${Provides}\n' 2>/dev/null)
}
# depends_closure PKG...: PKG and every installed package they depend on
# (Depends, Pre-Depends), recursively; virtual names resolve through Provides.
depends_closure() {
  declare -A seen=()
  local frontier=("$@") next p deps alts alt name
  while ((${#frontier[@]})); do
    next=()
    for p in "${frontier[@]}"; do seen["${p}"]=1; done
    while IFS= read -r deps; do
      # "a (>= 1), b | c, d:any" -> a, b, c, d
      IFS=',|' read -ra alts <<<"${deps}"
      for alt in "${alts[@]}"; do
        alt=${alt%%(*}        # drop a version constraint
        alt=${alt//[[:space:]]/}
        name=${alt%%:*}       # drop an architecture qualifier
        [[ -n "${name}" ]] || continue
        for name in "${name}" ${PROVIDER["${name}"]:-}; do
          [[ -n "${seen["${name}"]:-}" ]] && continue
          [[ -n "${INSTALLED["${name}"]:-}" ]] || continue
          seen["${name}"]=1
          next+=("${name}")
        done
      done
    done < <(dpkg-query -W -f='${Depends}, ${Pre-Depends}\n' "${frontier[@]}" 2>/dev/null)
    frontier=("${next[@]+"${next[@]}"}")
  done
  printf '%s\n' "${!seen[@]}" | sort
}

# --- the checks ---------------------------------------------------------------

TARGETS=$(cmake --build "${BUILD}" --target help 2>/dev/null | sed -n 's/^\([^: ]*\): .*/\1/p')
[[ -n "${TARGETS}" ]] || { echo "dockerfiles_test: no targets from cmake --build ${BUILD} --target help" >&2; exit 2; }
WITH_TORCH=$(sed -n 's/^BRAID_WITH_TORCH:BOOL=//p' "${BUILD}/CMakeCache.txt")
DEPS_SH=$(deps_sh_packages)
load_packages

shopt -s nullglob
dockerfiles=("${REPO}"/docker/*.Dockerfile)
((${#dockerfiles[@]})) || { echo "FAIL: no docker/*.Dockerfile" >&2; exit 1; }

for df in "${dockerfiles[@]}"; do
  name=docker/$(basename "${df}")
  build_stage=$(stage "${df}" build)
  runtime_stage=$(stage "${df}" runtime)
  if [[ -z "${build_stage}" ]]; then
    fail "${name}: no build stage (FROM debian:bookworm AS build)"
    continue
  fi
  programs=$(grep -oE 'COPY[[:space:]]+--from=build[[:space:]]+/src/build/bin/[^[:space:]]+' \
    <<<"${runtime_stage}" | sed 's|.*/src/build/bin/||' | sort -u)
  if [[ -z "${programs}" ]]; then
    fail "${name}: the runtime stage copies no program (COPY --from=build /src/build/bin/X ...)"
    continue
  fi
  if grep -qx braid-worker <<<"${programs}" && [[ "${WITH_TORCH}" == OFF ]]; then
    echo "SKIP: ${name}: ${BUILD} has BRAID_WITH_TORCH=OFF, no braid-worker to compare with" >&2
    continue
  fi

  # Build stage: scripts/deps.sh's packages.
  build_pkgs=$(installed_by "${build_stage}")
  for p in ${DEPS_SH}; do
    if [[ "${p}" == libtorch-dev ]] && grep -q -- '-DBRAID_WITH_TORCH=OFF' <<<"${build_stage}"; then
      continue
    fi
    if [[ " ${TEST_ONLY[*]} " == *" ${p} "* ]] && grep -q -- '-DBRAID_BUILD_TESTS=OFF' <<<"${build_stage}"; then
      continue
    fi
    grep -qx -- "${p}" <<<"${build_pkgs}" ||
      fail "${name}: build stage does not install ${p} (listed in scripts/deps.sh)"
  done

  # Runtime stage: user, entrypoint.
  grep -qE '^USER[[:space:]]+65532:65532[[:space:]]*$' <<<"${runtime_stage}" ||
    fail "${name}: runtime stage does not run as USER 65532:65532"
  entry=$(sed -n 's/^ENTRYPOINT[[:space:]]*\[[[:space:]]*"\([^"]*\)".*/\1/p' <<<"${runtime_stage}" | tail -n 1)
  [[ -n "${entry}" ]] || fail "${name}: runtime stage has no ENTRYPOINT [\"...\"]"

  runtime_pkgs=$(installed_by "${runtime_stage}")
  needed_pkgs=""
  entry_ok=""
  all_checked=1
  for prog in ${programs}; do
    [[ "${entry}" == "/usr/local/bin/${prog}" ]] && entry_ok=1
    grep -q "/src/build/bin/${prog}[[:space:]]\+/usr/local/bin/${prog}\b" <<<"${runtime_stage}" ||
      fail "${name}: COPY of ${prog} must install it as /usr/local/bin/${prog}"
    if ! grep -qx -- "${prog}" <<<"${TARGETS}"; then
      fail "${name}: copies /src/build/bin/${prog}, but ${prog} is no target of the CMake build (${BUILD})"
      all_checked=""
      continue
    fi
    grep -qE -- "--target[[:space:]]+${prog}([[:space:]]|$)" <<<"${build_stage}" ||
      fail "${name}: copies ${prog} but the build stage never builds it (cmake --build build --target ${prog})"
    bin="${BUILD}/bin/${prog}"
    if [[ ! -x "${bin}" ]]; then
      fail "${name}: ${bin} is not built; build it (cmake --build ${BUILD} --target ${prog}) so its libraries can be checked"
      all_checked=""
      continue
    fi

    # Direct libraries: each one's package must be named in the runtime stage.
    mapfile -t needed < <(readelf -d "${bin}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    declare -A loaded=()  # soname -> path, from ldd
    while read -r soname arrow path _; do
      [[ "${arrow}" == "=>" ]] || continue
      if [[ "${path}" == "not" ]]; then
        fail "${name}: ldd ${bin}: ${soname} not found on this machine"
        continue
      fi
      loaded["${soname}"]=${path}
    done < <(ldd "${bin}")
    # ld.so itself (no "=>" in ldd's output).
    interp=$(ldd "${bin}" | awk '$1 ~ /^\// {print $1}' | head -n 1)
    [[ -n "${interp}" ]] && loaded["$(basename "${interp}")"]=${interp}

    declare -A pkg_of=()
    while IFS=$'\t' read -r f p; do pkg_of["${f}"]=${p}; done \
      < <(packages_of_files "${loaded[@]}")

    direct=()
    for so in "${needed[@]}"; do
      path=${loaded["${so}"]:-}
      if [[ -z "${path}" ]]; then
        fail "${name}: ${prog} needs ${so}, which ldd does not resolve"
        continue
      fi
      p=${pkg_of["${path}"]:-}
      if [[ -z "${p}" ]]; then
        fail "${name}: ${prog} needs ${so} (${path}), which belongs to no Debian package here"
        continue
      fi
      direct+=("${p}")
      needed_pkgs+="${p}"$'\n'
      [[ " ${BASE_PACKAGES[*]} " == *" ${p} "* ]] && continue
      grep -qx -- "${p}" <<<"${runtime_pkgs}" ||
        fail "${name}: runtime stage does not install ${p} (${prog} links ${so})"
    done

    # Everything ldd loads must come with what the runtime stage installs.
    declare -A in_closure=()
    mapfile -t runtime_list <<<"${runtime_pkgs}"
    while read -r p; do in_closure["${p}"]=1; done \
      < <(depends_closure "${runtime_list[@]}" "${BASE_PACKAGES[@]}")
    for so in "${!loaded[@]}"; do
      path=${loaded["${so}"]}
      p=${pkg_of["${path}"]:-}
      if [[ -z "${p}" ]]; then
        fail "${name}: ${prog} loads ${path}, which belongs to no Debian package here"
        continue
      fi
      [[ -n "${in_closure["${p}"]:-}" ]] ||
        fail "${name}: ${prog} loads ${so} from package ${p}, which nothing the runtime stage installs depends on"
    done
    echo "checked: ${name}: ${prog}: ${#needed[@]} direct libraries from $(printf '%s\n' "${direct[@]}" | sort -u | wc -l) packages, ${#loaded[@]} loaded in all" >&2
    unset loaded pkg_of in_closure
  done
  [[ -n "${entry_ok}" ]] || fail "${name}: ENTRYPOINT ${entry:-<none>} is not /usr/local/bin/<a program it copies>"

  # Nothing extra in the runtime stage (images carry only what they load).
  if [[ -n "${all_checked}" && -n "${needed_pkgs}" ]]; then
    for p in ${runtime_pkgs}; do
      [[ " ${RUNTIME_ALTERNATIVES[*]} " == *" ${p} "* ]] && continue
      grep -qx -- "${p}" <<<"${needed_pkgs}" ||
        fail "${name}: runtime stage installs ${p}, which none of ${programs//$'\n'/, } links"
    done
  fi
done

if ((failures)); then
  echo "dockerfiles_test: ${failures} problem(s)" >&2
  exit 1
fi
echo "dockerfiles_test: PASS"
