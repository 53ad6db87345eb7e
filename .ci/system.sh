# Shared by .ci/setup and .ci/test (sourced): which Debian packages this machine
# lacks, and installing them when we may (root, or sudo without a password).
# Without root each missing set is named in one line with the exact command.

# The shared libraries the dynamic linker knows, one path a line. ldconfig is in
# /sbin, which an ordinary user's PATH lacks; with no ldconfig at all, look in
# the library folders themselves.
known_libraries() {
    local ldconfig
    for ldconfig in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
        if command -v "$ldconfig" >/dev/null 2>&1; then
            "$ldconfig" -p 2>/dev/null && return 0
        fi
    done
    find /lib /lib64 /usr/lib /usr/lib64 /usr/local/lib -maxdepth 3 -name 'lib*.so*' 2>/dev/null || true
}

# The Debian packages of the system libraries Qt loads that are missing here.
# The libxcb ones are for the kiosk on X11 (a bare X session on the kiosk itself).
missing_qt_packages() {
    local known pair missing=()
    # Read the list once: `ldconfig -p | grep -q` fails under pipefail whenever
    # grep stops reading early.
    known=$(known_libraries)
    for pair in libEGL.so.1:libegl1 libGL.so.1:libgl1 libxkbcommon.so.0:libxkbcommon0 \
                libfontconfig.so.1:libfontconfig1 libdbus-1.so.3:libdbus-1-3 \
                libglib-2.0.so.0:libglib2.0-0 libX11.so.6:libx11-6 \
                libxcb-cursor.so.0:libxcb-cursor0 libxcb-icccm.so.4:libxcb-icccm4 \
                libxcb-image.so.0:libxcb-image0 libxcb-keysyms.so.1:libxcb-keysyms1 \
                libxcb-randr.so.0:libxcb-randr0 libxcb-render-util.so.0:libxcb-render-util0 \
                libxcb-shape.so.0:libxcb-shape0 libxcb-xkb.so.1:libxcb-xkb1 \
                libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
        grep -qF "/${pair%%:*}" <<<"$known" || missing+=("${pair##*:}")
    done
    have_fonts || missing+=(fonts-dejavu-core)
    echo "${missing[*]}"
}

# Whether any font file is installed (fc-list comes with fontconfig, which a
# machine with only libfontconfig1 lacks: look at the font folders instead).
have_fonts() {
    if command -v fc-list >/dev/null 2>&1; then
        [ -n "$(fc-list 2>/dev/null | head -n1)" ] && return 0
    fi
    [ -n "$(find /usr/share/fonts /usr/local/share/fonts "${HOME:-/nonexistent}/.local/share/fonts" \
        "${HOME:-/nonexistent}/.fonts" \( -name '*.ttf' -o -name '*.otf' -o -name '*.pfb' \) \
        -print -quit 2>/dev/null)" ]
}

# Whether this account may install packages: root, or sudo without a password.
may_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    [ "$(id -u)" = 0 ] && return 0
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null
}

# install_packages [--recommends] WHAT PACKAGE...: apt-get them when we may;
# else one line naming them and the command, and a non-zero return. WHAT says
# what needs them.
install_packages() {
    local recommends=--no-install-recommends
    if [ "${1:-}" = --recommends ]; then recommends=""; shift; fi
    local what=$1 sudo=""
    shift
    [ $# -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        printf '==> missing system packages for %s: %s (Debian/Ubuntu names; no apt-get here)\n' \
            "$what" "$*" >&2
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            printf '==> missing system packages for %s: %s; as root run: apt-get install -y %s\n' \
                "$what" "$*" "$*" >&2
            return 1
        fi
    fi
    printf '==> installing system packages for %s: %s\n' "$what" "$*" >&2
    if $sudo apt-get update -qq &&
       $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $recommends \
           "$@" >/dev/null; then
        return 0
    fi
    printf '==> could not install %s for %s; as root run: apt-get install -y %s\n' \
        "$*" "$what" "$*" >&2
    return 1
}
