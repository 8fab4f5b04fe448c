# pcipass vf set / vf list's VF columns on the real kernel (issue 11): QEMU 7.2
# has no SR-IOV NIC, so the kernel's netdevsim (built by build-image from
# linux-source, like mtty) plays the PF: its VFs take MAC, VLAN, spoof check
# and trust through the same rtnetlink calls (ndo_set_vf_*) a NIC's driver
# does. Its VFs are no PCI devices, hence the hidden --ifname.
# 1. modprobe netdevsim; a device with one port and 4 VFs.
# 2. `vf set --dry-run` changes nothing; `vf set IF 1 --mac --vlan --spoofchk
#    --trust`: `vf list --ifname IF --json` shows all four, and iproute2's
#    `ip link show IF` (the kernel's own report) agrees; no journal left.
# 3. bad input (MAC, VLAN, an index the PF has not) is refused, nothing set.
# 4. undo through netlink: netdevsim refuses no valid setting, so a fault in
#    the middle of `vf set` cannot be made here (the unit tests make one at
#    every setting); the same undo runs from a journal as an interrupted
#    `vf set` leaves it: `pcipass recover` puts VF 1's MAC back.
# topology: minimal
# iommu: off
# needs: pcipass

need_pcipass
pcipass vf --help 2>/dev/null | grep -qE '^ +set' ||
  { fail "pcipass has no 'vf set': this binary predates branch h11-netlink"; finish; }
modinfo netdevsim > "$RESULTS/modinfo-netdevsim" 2>&1 || { fail "no netdevsim module in the guest (build-image)"; finish; }
modprobe netdevsim || { fail "modprobe netdevsim failed"; finish; }
echo "11 1" > /sys/bus/netdevsim/new_device || { fail "netdevsim new_device failed"; finish; }
D=/sys/bus/netdevsim/devices/netdevsim11
n=0
while [ ! -d "$D/net" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
IF=$(ls "$D/net" 2>/dev/null | head -n1)
[ -n "$IF" ] || { fail "netdevsim11 has no interface"; finish; }
echo 4 > "$D/sriov_numvfs" || { fail "sriov_numvfs=4 on netdevsim11 failed"; finish; }
log "netdevsim11: $IF with $(cat "$D/sriov_numvfs") VFs"
IP=$(command -v ip.iproute2 || true)
[ -n "$IP" ] || fail "no iproute2 ip (ip.iproute2) in the guest (build-image)"
iplink() { "$IP" link show "$IF" > "$RESULTS/ip-link-$1" 2>&1; cat "$RESULTS/ip-link-$1"; }
iplink before

# 2. set
pp list-before vf list --ifname "$IF" --json
expect_rc "vf list --ifname" 0
expect_eq "VFs listed" "$(json_flat "$PP_OUT" | grep -c '^pfs\.0\.vfs\.[0-9]*\.index=')" 4
pp set-dry vf set x 1 --ifname "$IF" --mac 02:11:22:33:44:55 --vlan 42 --dry-run
expect_rc "vf set --dry-run" 0
expect_has "dry run" "$PP_OUT" "set $IF vf 1 mac 02:11:22:33:44:55"
iplink dry > /dev/null
expect_not "ip link after a dry run" "$RESULTS/ip-link-dry" "02:11:22:33:44:55"

pp set vf set x 1 --ifname "$IF" --mac 02:11:22:33:44:55 --vlan 42 --spoofchk off --trust on --json
expect_rc "vf set" 0
[ -e /run/pcipass/journal.json ] && fail "a journal is left: $(tr '\n' ' ' < /run/pcipass/journal.json)"
pp list vf list --ifname "$IF" --json
json_flat "$PP_OUT" > "$RESULTS/list.flat"
expect_has "vf list" "$RESULTS/list.flat" "pfs.0.vfs.1.net.mac=02:11:22:33:44:55"
expect_has "vf list" "$RESULTS/list.flat" "pfs.0.vfs.1.net.vlan=42"
expect_has "vf list" "$RESULTS/list.flat" "pfs.0.vfs.1.net.spoofchk=false"
expect_has "vf list" "$RESULTS/list.flat" "pfs.0.vfs.1.net.trust=true"
# iproute2 prints "vf 1 link/ether 02:11:22:33:44:55 ..., vlan 42, spoof checking off, link-state auto, trust on"
vf1=$(iplink after | grep -E '^ +vf 1 ' | tr -s ' ')
log "ip: $vf1"
case "$vf1" in *"02:11:22:33:44:55"*) ok "ip link: VF 1's MAC" ;; *) fail "ip link: VF 1 has not the MAC: $vf1" ;; esac
case "$vf1" in *"vlan 42"*) ok "ip link: VF 1's VLAN" ;; *) fail "ip link: VF 1 has not VLAN 42: $vf1" ;; esac
case "$vf1" in *"spoof checking off"*) ok "ip link: VF 1's spoof check" ;; *) fail "ip link: VF 1 spoof check not off: $vf1" ;; esac
case "$vf1" in *"trust on"*) ok "ip link: VF 1's trust" ;; *) fail "ip link: VF 1 not trusted: $vf1" ;; esac
pp list-human vf list --ifname "$IF"
expect_has "vf list (human)" "$PP_OUT" "02:11:22:33:44:55"

# 3. refusals
pp bad-mac vf set x 2 --ifname "$IF" --mac 02:11:22:33:44
expect_rc "bad MAC" 2
expect_has "bad MAC" "$PP_ERR" "--mac '02:11:22:33:44' is not a MAC address"
pp bad-vlan vf set x 2 --ifname "$IF" --vlan 4096
expect_rc "bad VLAN" 2
pp bad-index vf set x 9 --ifname "$IF" --trust on
expect_rc "VF 9 of 4" 2
expect_has "VF 9 of 4" "$PP_ERR" "$IF has no VF 9 (4 VFs)"
iplink refused > /dev/null
cmp -s "$RESULTS/ip-link-after" "$RESULTS/ip-link-refused" && ok "ip link unchanged by the refusals" ||
  fail "ip link changed by a refused vf set"

# 4. recover: a journal as an interrupted `vf set` leaves it (VF 1's MAC set, its before kept)
mkdir -p /run/pcipass
cat > /run/pcipass/journal.json <<EOF
{"schema": "pcipass.journal/2", "operation": "write", "driver": "", "owner": "", "pid": 1,
 "phase": "writing", "changes": [{"kind": "vf", "ifname": "$IF", "vf": 1, "field": "mac",
 "before": {"mac": "02:00:00:00:00:01"}, "after": {"mac": "02:11:22:33:44:55"}}]}
EOF
pp recover recover --json
expect_rc "recover" 0
[ -e /run/pcipass/journal.json ] && fail "recover left the journal"
vf1=$(iplink recovered | grep -E '^ +vf 1 ' | tr -s ' ')
case "$vf1" in *"02:00:00:00:00:01"*) ok "recover put VF 1's MAC back" ;; *) fail "recover: VF 1 is $vf1" ;; esac

echo 11 > /sys/bus/netdevsim/del_device
finish
