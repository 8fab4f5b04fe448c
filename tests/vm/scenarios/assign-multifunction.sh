# pcipass on the multifunction slot (VGA 02:00.0 + HD audio 02:00.1, one
# IOMMU group, like a GPU and its HDMI audio): binding one function is
# refused (the group would not be viable; the message names the other
# function); the VGA also drives the framebuffer console, so --with-group
# alone is still refused for that until fbcon lets go of it (vtcon unbind,
# what a passthrough host does); then --with-group moves both functions to
# vfio-pci and QEMU opens both (two -device vfio-pci on pcie.0, one slot,
# functions 0 and 1). Release gives them back to bochs-drm / snd_hda_intel.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
vga=$(pci_find 0x1234 0x1111); hda=$(pci_find 0x8086 0x293e)
[ -n "$vga" ] && [ -n "$hda" ] || { fail "no VGA (1234:1111) or HDA (8086:293e)"; finish; }
g=$(pci_group "$vga")
expect_eq "$hda group" "$(pci_group "$hda")" "$g"
expect_dev "$vga" bochs-drm "(null)"
expect_dev "$hda" snd_hda_intel "(null)"

# 1. One function: refused, naming the other one; nothing written.
pp bind-one bind "$vga"
expect_rc "bind $vga" 1
expect_has "bind $vga" "$PP_ERR" "IOMMU group $g would not be viable: $hda (snd_hda_intel) would stay on the host"
expect_has "bind $vga" "$PP_ERR" "add --with-group to bind every endpoint of group $g ($vga, $hda)"
pp bind-hda bind "$hda"
expect_rc "bind $hda" 1
expect_has "bind $hda" "$PP_ERR" "IOMMU group $g would not be viable: $vga (bochs-drm) would stay on the host"
expect_dev "$vga" bochs-drm "(null)"
expect_dev "$hda" snd_hda_intel "(null)"
expect_clean refused

# 2. --with-group while fbcon is on the VGA: refused for the console only.
fbvt=""
for _v in /sys/class/vtconsole/vtcon*; do
  grep -q "frame buffer" "$_v/name" && [ "$(cat "$_v/bind")" = 1 ] && fbvt=$_v
done
if [ -n "$fbvt" ]; then
  pp plan-console plan --with-group "$vga" --json
  expect_rc "plan --with-group (console)" 1
  expect_has "plan --with-group (console)" "$PP_OUT" "\"id\": \"host-critical\""
  expect_not "plan --with-group (console)" "$PP_OUT" "group-not-viable"
  pp bind-console bind --with-group "$vga"
  expect_rc "bind --with-group (console)" 1
  expect_has "bind --with-group (console)" "$PP_ERR" "$vga drives the framebuffer console"
  expect_dev "$vga" bochs-drm "(null)"
  echo 0 > "$fbvt/bind" && log "fbcon unbound from the VGA (${fbvt##*/})"
fi

# 3. --with-group: both functions move.
pp plan plan --with-group "$vga"
expect_rc "plan --with-group" 0
expect_has "plan --with-group" "$PP_OUT" "would move $vga, $hda to vfio-pci"
pp bind bind --with-group "$vga"
expect_rc "bind --with-group" 0
expect_has "bind" "$PP_OUT" "bound $vga to vfio-pci (was bochs-drm)"
expect_has "bind" "$PP_OUT" "bound $hda to vfio-pci (was snd_hda_intel)"
expect_dev "$vga" vfio-pci vfio-pci
expect_dev "$hda" vfio-pci vfio-pci
[ -c "/dev/vfio/$g" ] && ok "/dev/vfio/$g" || fail "no /dev/vfio/$g"
ls "/sys/bus/pci/devices/$vga/drm" >/dev/null 2>&1 && fail "the VGA still has a DRM card"

# 4. QEMU opens both functions.
if qemu_start gpu -device "vfio-pci,host=$vga,bus=pcie.0,addr=0x4.0,multifunction=on,id=gpu" \
                  -device "vfio-pci,host=$hda,bus=pcie.0,addr=0x4.1,id=audio"; then
  cp "$QEMU_DIR/cmdline" "$RESULTS/qemu-gpu.cmdline"
  qemu_pci > "$RESULTS/qemu-gpu.pci"
  expect_eq "QEMU query-pci 04.0" "$(grep '^04\.0 ' "$RESULTS/qemu-gpu.pci")" "04.0 1234:1111 gpu"
  expect_eq "QEMU query-pci 04.1" "$(grep '^04\.1 ' "$RESULTS/qemu-gpu.pci")" "04.1 8086:293e audio"
  pp status-qemu status
  expect_has "status with QEMU running" "$PP_OUT" "in use by qemu-system-x86 (pid $QEMU_PID)"
  qemu_quit
  cp "$QEMU_DIR/err" "$RESULTS/qemu-gpu.err"
else
  fail "QEMU could not open $vga + $hda: $(tr '\n' ' ' < "$QEMU_DIR/err")"
fi

# 5. Release both: back on bochs-drm (DRM card) and snd_hda_intel (sound card).
pp release release "$vga" "$hda"
expect_rc "release" 0
expect_has "release" "$PP_OUT" "released $vga: vfio-pci -> bochs-drm"
expect_has "release" "$PP_OUT" "released $hda: vfio-pci -> snd_hda_intel"
expect_dev "$vga" bochs-drm "(null)"
expect_dev "$hda" snd_hda_intel "(null)"
ls -d "/sys/bus/pci/devices/$vga/drm/card"* >/dev/null 2>&1 && ok "$vga has a DRM card again" || fail "no DRM card under $vga"
ls -d "/sys/bus/pci/devices/$hda/sound/card"* >/dev/null 2>&1 && ok "$hda has a sound card again" || fail "no sound card under $hda"
[ -e "/dev/vfio/$g" ] && fail "/dev/vfio/$g still there after release"
expect_clean released
finish
