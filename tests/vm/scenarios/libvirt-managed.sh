# libvirt's QEMU driver in the guest (libvirtd + virsh from the host, TCG: a
# <domain type='qemu'>) with the e1000e on the root bus (00:02.0, its own group)
# as a managed <hostdev>: `pcipass attach` (libvirt's C API) refuses it without
# --force (it carries the default route), puts it into the definition (--config),
# `virsh start --paused` makes libvirt move it to vfio-pci and QEMU opens it
# (query-pci, QEMU holding /dev/vfio/G), `virsh destroy` gives it back to
# e1000e, `pcipass detach` takes it out of the definition again.
# topology: nic-root+pci-bridge
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
need_libvirt
nic=$(pci_find 0x8086 0x10d3)
[ -n "$nic" ] || { fail "no e1000e (8086:10d3)"; finish; }
g=$(pci_group "$nic")
dom=pt-managed
log "e1000e $nic, group $g; domain $dom"
expect_dev "$nic" e1000e "(null)"

# 1. Define a small domain and add the device to its definition.
domain_xml "$dom" > /tmp/$dom.xml
cp /tmp/$dom.xml "$RESULTS/domain-$dom.xml"
vr define define /tmp/$dom.xml
expect_eq "virsh define: exit status" "$VR_RC" 0
# The e1000e carries the guest's default route: refused without --force, nothing sent.
attach_cmd "$dom" "$nic"
expect_eq "pcipass attach $dom $nic (default route): exit status" "$?" 1
expect_has "pcipass attach refusal" "$PP_ERR" "default route"
vr dumpxml-refused dumpxml --inactive "$dom"
expect_not "the definition after a refused attach" "$VR_OUT" "<hostdev"
pp plan-domain plan "$nic" --domain "$dom" --json
expect_has "plan --domain" "$PP_OUT" '"domain_budget"'
attach_cmd "$dom" "$nic" --force
expect_eq "pcipass attach $dom $nic --force: exit status" "$?" 0
vr dumpxml-attached dumpxml --inactive "$dom"
_bus=$(printf '0x%s' "$(echo "$nic" | cut -d: -f2)")
_slot=$(printf '0x%s' "$(echo "$nic" | cut -d: -f3 | cut -d. -f1)")
if grep -q "<hostdev mode='subsystem' type='pci' managed='yes'>" "$VR_OUT" &&
   grep -q "bus='$_bus' slot='$_slot'" "$VR_OUT"; then ok "the definition has the managed hostdev $nic"
else fail "no managed hostdev $nic in the definition: $(tr '\n' ' ' < "$VR_OUT" | head -c 1500)"; fi
expect_dev "$nic" e1000e "(null)"

# 2. Start paused: libvirt binds it to vfio-pci, QEMU holds the group.
vr start start --paused "$dom"
expect_eq "virsh start --paused: exit status" "$VR_RC" 0
if [ "$VR_RC" = 0 ]; then
  expect_eq "$nic driver while $dom runs" "$(pci_driver "$nic")" vfio-pci
  qpid=$(cat /run/libvirt/qemu/$dom.pid 2>/dev/null)
  _held=0
  for _f in /proc/"$qpid"/fd/*; do [ "$(readlink "$_f")" = "/dev/vfio/$g" ] && _held=1; done
  expect_eq "QEMU (pid $qpid) holds /dev/vfio/$g" $_held 1
  # libvirt names it hostdev0 and puts it on a root port of its own (pcie-root-port pci.1)
  vr qom-host qemu-monitor-command "$dom" '{"execute":"qom-get","arguments":{"path":"/machine/peripheral/hostdev0","property":"host"}}'
  expect_has "QEMU's vfio-pci device hostdev0" "$VR_OUT" "\"return\":\"$nic\""
  vr dumpxml-live dumpxml "$dom"
  # A paused machine's query-pci lists pcie.0 only (no bus numbers behind the root ports yet):
  # resume it, SeaBIOS numbers the buses, and the card shows with its IDs.
  vr resume resume "$dom"
  expect_eq "virsh resume: exit status" "$VR_RC" 0
  _i=0 _seen=""
  while [ $_i -lt 60 ] && [ -z "$_seen" ]; do
    virsh qemu-monitor-command "$dom" '{"execute":"query-pci"}' > /tmp/query-pci 2>&1
    _seen=$(query_pci_list < /tmp/query-pci | grep ' hostdev0$')
    [ -n "$_seen" ] || { sleep 0.5; _i=$((_i + 1)); }
  done
  cp /tmp/query-pci "$RESULTS/virsh/query-pci.out"
  query_pci_list < /tmp/query-pci > "$RESULTS/query-pci.list"
  expect_eq "query-pci: hostdev0" "$(echo "$_seen" | cut -d' ' -f2-)" "8086:10d3 hostdev0"
  vr suspend suspend "$dom"
  libvirt_save running
  # 3. Destroy: libvirt gives the device back to e1000e.
  vr destroy destroy "$dom"
  expect_eq "virsh destroy: exit status" "$VR_RC" 0
  expect_dev "$nic" e1000e "(null)"
  if [ -n "$(ls "/sys/bus/pci/devices/$nic/net" 2>/dev/null)" ]; then ok "$nic has its network interface again"
  else fail "no network interface under $nic after destroy"; fi
else
  libvirt_save start-failed
fi

# 4. Take it out of the definition.
detach_cmd "$dom" "$nic"
expect_eq "pcipass detach $dom $nic: exit status" "$?" 0
vr dumpxml-detached dumpxml --inactive "$dom"
if grep -q '<hostdev' "$VR_OUT"; then fail "the definition still has a hostdev: $(tr '\n' ' ' < "$VR_OUT" | head -c 1500)"
else ok "the definition has no hostdev"; fi
vr undefine undefine "$dom"
libvirt_stop
finish
