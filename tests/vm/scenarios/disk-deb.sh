# The Debian package in a clean Debian 12 root (issue 12): the disk guest (tests/vm/build-disk
# bios-grub: debootstrap minbase, systemd, udev) gets the built pcipass_*.deb through the share
# (run-all: $PCIPASS_DEB, --add; no pcipass from the build tree: --no-pcipass), installs it with
# apt offline (every Depends and Recommends is in the disk), runs `check`, `list`, `--version`
# and the boot unit from the package, then `apt-get remove`s it and asserts that the host is as
# it was before the install: no unit enabled, nothing of pcipass under /etc or /usr, no
# driver_override, the binary gone.
# disk: bios-grub
# timeout: 900
# (initramfs-tools' file trigger regenerates the initramfs when the package's hook is installed
# and again when it is removed: about a minute each under TCG, several on a loaded machine)
# needs: deb

deb=$(ls /share/pcipass_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { echo "SKIP: no pcipass_*.deb in the share (scripts/build-deb; PCIPASS_DEB)"; exit 77; }
export DEBIAN_FRONTEND=noninteractive
D=$RESULTS/deb
mkdir -p "$D"

# What the host looks like: the files of /etc and /usr that name pcipass (the harness's own
# unit and runner excepted), the enabled units, every device's driver_override.
host_state() {
  find /etc /usr $([ -L /lib ] || echo /lib) -xdev -name '*pcipass*' ! -name pcipass-test.service \
    ! -name pcipass-vm-boot ! -name pcipass-disk-install 2>/dev/null | sort
  echo "enabled:"
  systemctl list-unit-files --state=enabled --no-legend 2>/dev/null | awk '{print $1}' | sort
  echo "overrides:"
  for d in /sys/bus/pci/devices/*; do echo "${d##*/} $(cat "$d/driver_override")"; done
}
expect_file() { if [ -s "$2" ]; then ok "$1: $2"; else fail "$1: no $2"; fi; }

log "before the install"
expect_eq "pcipass on PATH before the install" "$(command -v pcipass || echo none)" none
host_state > "$D/before"

log "apt-get install $deb (offline)"
rc=0
apt-get install -y -q -o Dpkg::Use-Pty=0 "$deb" > "$D/apt-install.log" 2>&1 || rc=$?
expect_eq "apt-get install status" "$rc" 0
[ $rc = 0 ] || { tail -n 20 "$D/apt-install.log"; finish; }
expect_eq "package state" "$(dpkg-query -W -f='${db:Status-Abbrev}' pcipass)" "ii "
expect_eq "pcipass on PATH" "$(command -v pcipass)" /usr/sbin/pcipass
expect_eq "/usr/sbin/pcipass comes from" "$(dpkg-query -S /usr/sbin/pcipass | cut -d: -f1)" pcipass
# Installing enabled and started nothing.
expect_eq "pcipass-apply.service after the install" \
  "$(systemctl is-enabled pcipass-apply.service 2>&1); $(systemctl is-active pcipass-apply.service)" \
  "disabled; inactive"

version=$(dpkg-query -W -f='${Version}' pcipass)
rc=0; out=$(pcipass --version 2>&1) || rc=$?
expect_eq "pcipass --version status" "$rc" 0
case $out in *"$version"*) ok "--version names $version: $out" ;;
  *) fail "--version: '$out' does not name the package's version $version" ;; esac

# `pcipass check`: the disk boots with intel_iommu=off (build-disk), so the IOMMU line must FAIL with a fix
# and the status be 1 (FAIL > WARN > PASS; docs/checks.md); the Libraries line proves that the
# package's libkmod2 loads.
rc=0; pcipass check > "$D/check.out" 2> "$D/check.err" || rc=$?
cat "$D/check.out"
expect_eq "check status (a FAIL)" "$rc" 1
grep -q '^FAIL  IOMMU in the kernel' "$D/check.out" && ok "check: the IOMMU is off in the kernel" ||
  fail "check: no FAIL line for the IOMMU in the kernel (intel_iommu=off)"
grep -q '^PASS  Libraries .*libkmod.so.2' "$D/check.out" && ok "check: libkmod.so.2 loads" ||
  fail "check: the Libraries line is not PASS for libkmod.so.2"

# `pcipass list`: every device of the bus, named from pci.ids through the libpci3 pcipass loads.
rc=0; pcipass list > "$D/list.out" 2> "$D/list.err" || rc=$?
expect_eq "list status" "$rc" 0
for d in /sys/bus/pci/devices/*; do
  a=${d##*/}
  grep -q "^${a#0000:} \|^$a " "$D/list.out" || fail "list: no line for $a"
done
grep -q 'Virtio' "$D/list.out" && ok "list names the virtio devices (libpci3, pci.ids)" ||
  fail "list: no device named Virtio (libpci3 not loaded?)"

expect_file "man page" /usr/share/man/man8/pcipass.8.gz
expect_file "man page" /usr/share/man/man8/pcipass-bind.8.gz
zcat /usr/share/man/man8/pcipass.8.gz | grep -q '^\.TH' && ok "pcipass.8.gz is a man page" ||
  fail "pcipass.8.gz has no .TH"
expect_file "bash completion" /usr/share/bash-completion/completions/pcipass
grep -q '^complete -F _pcipass pcipass$' /usr/share/bash-completion/completions/pcipass ||
  fail "bash completion: no complete -F _pcipass pcipass"
expect_eq "zsh completion" "$(head -n1 /usr/share/zsh/vendor-completions/_pcipass)" "#compdef pcipass"
expect_file "udev rule" /lib/udev/rules.d/61-pcipass-mdev.rules

# The initramfs-tools hook, run as update-initramfs runs it (DESTDIR: the image's tree): without
# the early-binding rule it adds nothing; with one it copies it to the same path in the image.
hook=/usr/share/initramfs-tools/hooks/pcipass
expect_file "initramfs-tools hook" "$hook"
expect_eq "the hook's prerequisites" "$(sh "$hook" prereqs)" udev
rule=/etc/udev/rules.d/05-pcipass-vfio.rules
image=$(mktemp -d)
rc=0; DESTDIR=$image sh "$hook" > "$D/hook.out" 2>&1 || rc=$?
expect_eq "the hook without the rule: status, files added" "$rc $(find "$image" -type f | wc -l)" "0 0"
echo '# a rule as setup --early-bind writes it' > "$rule"
rc=0; DESTDIR=$image sh "$hook" >> "$D/hook.out" 2>&1 || rc=$?
expect_eq "the hook with the rule: status, the copy" "$rc $(cat "$image$rule")" \
  "0 # a rule as setup --early-bind writes it"
rm -rf "$rule" "$image"

# The unit, as the package installed it: without a store its condition is false, the start
# succeeds and runs nothing; with a store (the documented empty one) it runs the packaged
# binary's `apply --boot`, which has nothing to bind.
rc=0; systemctl start pcipass-apply.service || rc=$?
expect_eq "systemctl start pcipass-apply.service (no store)" "$rc" 0
expect_eq "no store: condition" "$(systemctl show -P ConditionResult pcipass-apply.service)" no
expect_eq "no store: started at" "$(systemctl show -P ExecMainStartTimestampMonotonic pcipass-apply.service)" 0
mkdir /etc/pcipass
echo '{"schema": "pcipass.assignments/1", "devices": []}' > /etc/pcipass/assignments.json
systemctl stop pcipass-apply.service
rc=0; systemctl start pcipass-apply.service || rc=$?
expect_eq "systemctl start pcipass-apply.service (empty store)" "$rc" 0
systemctl show pcipass-apply.service > "$D/unit.show"
journalctl -b -u pcipass-apply.service --no-pager > "$D/unit.journal" 2>&1
expect_eq "empty store: condition" "$(systemctl show -P ConditionResult pcipass-apply.service)" yes
expect_eq "empty store: active" "$(systemctl is-active pcipass-apply.service)" active
expect_eq "empty store: exit status" "$(systemctl show -P ExecMainStatus pcipass-apply.service)" 0
[ "$(systemctl show -P ExecMainStartTimestampMonotonic pcipass-apply.service)" != 0 ] &&
  ok "the unit's ExecStart ran" || fail "the unit's ExecStart did not run"
case $(systemctl show -P ExecStart pcipass-apply.service) in
  *"path=/usr/sbin/pcipass ; argv[]=/usr/sbin/pcipass apply --boot ;"*) ok "ExecStart is the packaged /usr/sbin/pcipass apply --boot" ;;
  *) fail "ExecStart: $(systemctl show -P ExecStart pcipass-apply.service)" ;;
esac
expect_eq "the unit's file comes from" \
  "$(dpkg-query -S "$(systemctl show -P FragmentPath pcipass-apply.service)" | cut -d: -f1)" pcipass
# The store is this test's input, not the package's: gone before the removal.
rm -r /etc/pcipass

log "apt-get remove pcipass"
rc=0
apt-get remove -y -q -o Dpkg::Use-Pty=0 pcipass > "$D/apt-remove.log" 2>&1 || rc=$?
expect_eq "apt-get remove status" "$rc" 0
hash -r  # dash remembers where it found pcipass
expect_eq "pcipass on PATH after the removal" "$(command -v pcipass || echo none)" none
[ ! -e /usr/sbin/pcipass ] && ok "/usr/sbin/pcipass is gone" || fail "/usr/sbin/pcipass is still there"
expect_eq "pcipass-apply.service after the removal" "$(systemctl is-active pcipass-apply.service)" inactive
host_state > "$D/after"
if cmp -s "$D/before" "$D/after"; then
  ok "the host is as before the install ($(grep -c . "$D/before") lines: files, enabled units, overrides)"
else
  fail "the host differs from before the install:"; diff "$D/before" "$D/after"
fi
ls /var/lib/dpkg/info/pcipass.* /var/lib/systemd/deb-systemd-helper-enabled/*pcipass* \
  > "$D/dpkg-leftovers" 2>/dev/null
log "dpkg's own records left: $(wc -l < "$D/dpkg-leftovers") ($(dpkg-query -W -f='${db:Status-Abbrev}' pcipass 2>/dev/null))"
finish
