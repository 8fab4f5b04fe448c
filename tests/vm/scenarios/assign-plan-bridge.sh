# pcipass plan for one of the two identical e1000 behind the pcie-pci-bridge
# (root port -> 04:00.0 pcie-pci-bridge -> 05:01.0, 05:02.0: one IOMMU
# group): the plan names every device behind the bridge (and the bridge,
# which stays), in --json and human form; alone it is refused (the twin
# would be left behind), --with-group makes it ready; plan writes nothing.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
set -- $(pci_find 0x8086 0x100e)
[ $# = 2 ] || { fail "want two e1000 (8086:100e), got: $*"; finish; }
nic=$1 twin=$2
bridge=$(basename "$(dirname "$(realpath "/sys/bus/pci/devices/$nic")")")
expect_eq "$bridge vendor:device" "$(cat /sys/bus/pci/devices/$bridge/vendor):$(cat /sys/bus/pci/devices/$bridge/device)" "0x1b36:0x000e"
# Every PCI device whose canonical path lies under the bridge, and the bridge.
bpath=$(realpath "/sys/bus/pci/devices/$bridge")
behind=""
for _d in /sys/bus/pci/devices/*; do
  case $(realpath "$_d") in "$bpath"/*) behind="$behind ${_d##*/}" ;; esac
done
log "behind $bridge:$behind"
expect_eq "devices behind $bridge" "$(echo $behind)" "$nic $twin"
g=$(pci_group "$nic")
expect_eq "group members" "$(ls /sys/kernel/iommu_groups/$g/devices | tr '\n' ' ')" "$bridge $nic $twin "
snap() { for _a in $bridge $nic $twin; do echo "$_a $(pci_driver $_a) $(sysfs_override $_a)"; done; ls /run/pcipass 2>/dev/null; }
before=$(snap)

# --json
pp plan-json plan "$nic" --json
expect_rc "plan --json" 1
json_flat "$PP_OUT" > "$RESULTS/plan.flat"
expect_has "plan --json" "$RESULTS/plan.flat" "verdict=refused"
expect_eq "plan --json: groups" "$(grep -c '^groups\.[0-9]*\.id=' "$RESULTS/plan.flat")" 1
expect_has "plan --json" "$RESULTS/plan.flat" "groups.0.id=$g"
acts=$(awk -F= '/^groups\.0\.devices\.[0-9]+\.address=/{a=$2} /^groups\.0\.devices\.[0-9]+\.action=/{printf "%s:%s ", a, $2}' "$RESULTS/plan.flat")
expect_eq "plan --json: device:action" "$acts" "$bridge:stays $nic:bind $twin:left-behind "
for _a in $behind $bridge; do expect_has "plan --json" "$RESULTS/plan.flat" "address=$_a"; done
expect_has "plan --json" "$RESULTS/plan.flat" "refusals.0.id=group-not-viable"
expect_has "plan --json" "$RESULTS/plan.flat" "refusals.0.message=IOMMU group $g would not be viable: $twin (e1000) would stay on the host"
expect_has "plan --json" "$RESULTS/plan.flat" "refusals.0.fix=add --with-group to bind every endpoint of group $g ($nic, $twin)"
_if=$(ls /sys/bus/pci/devices/$nic/net)
expect_has "plan --json: host loses" "$RESULTS/plan.flat" "host_loses.0.name=$_if"

# human
pp plan plan "$nic"
expect_rc "plan" 1
for _a in $behind $bridge; do expect_has "plan" "$PP_OUT" "$_a"; done
expect_has "plan" "$PP_OUT" "IOMMU group $g"
expect_eq "plan: table rows" "$(awk '/^The host would lose/ {exit} $1 ~ /^0000:/ {printf "%s:%s ", $1, $4}' "$PP_OUT")" "$bridge:stays $nic:bind $twin:left-behind "
expect_has "plan" "$PP_OUT" "Verdict: refused"
expect_has "plan" "$PP_OUT" "network interface $_if"

# --with-group: ready, both NICs move, the bridge stays
pp plan-group plan "$nic" --with-group --json
expect_rc "plan --with-group" 0
json_flat "$PP_OUT" > "$RESULTS/plan-group.flat"
expect_has "plan --with-group" "$RESULTS/plan-group.flat" "verdict=ready"
acts=$(awk -F= '/^groups\.0\.devices\.[0-9]+\.address=/{a=$2} /^groups\.0\.devices\.[0-9]+\.action=/{printf "%s:%s ", a, $2}' "$RESULTS/plan-group.flat")
expect_eq "plan --with-group: device:action" "$acts" "$bridge:stays $nic:bind $twin:bind "
pp plan-twin plan "$twin" --with-group
expect_has "plan $twin --with-group" "$PP_OUT" "would move $nic, $twin to vfio-pci"
expect_rc "plan $twin --with-group" 0

# the bridge itself is not assignable
pp plan-bridge plan "$bridge"
expect_rc "plan of the bridge" 2
expect_has "plan of the bridge" "$PP_ERR" "$bridge is a bridge"

expect_eq "nothing changed by plan" "$(snap)" "$before"
finish
