// Mediated devices (vGPU-style instances a parent driver makes in software): the types parents
// offer (/sys/class/mdev_bus), the instances (/sys/bus/mdev/devices), creating and removing them
// as runtime plans of the change engine (journaled, rolled back, recovered like vf create), and
// persistent definitions in mdevctl's own format and place, /etc/mdevctl.d/PARENT/UUID, so that
// pcipass and mdevctl read each other's (docs/mdev.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "host/context.h"
#include "host/host_fs.h"

namespace pcipass::mdev {

inline constexpr const char* kParentsDir = "/sys/class/mdev_bus";
inline constexpr const char* kDevicesDir = "/sys/bus/mdev/devices";
inline constexpr const char* kConfigDir = "/etc/mdevctl.d";

struct Type {
  std::string id;                             // "mtty-2": its directory, what create takes
  std::string name, description, device_api;  // "" when the driver shows none
  std::optional<int> available;               // available_instances; nullopt: unreadable
  std::vector<std::string> devices;           // the UUIDs of its instances
};

struct Parent {
  std::string name;  // "0000:00:02.0", "mtty"
  std::vector<Type> types;
  std::vector<std::string> problems;  // attribute files unreadable or out of range
};

// Every parent with its types, or only `parent` (an error when it is not one).
Result<std::vector<Parent>> types(const HostFs& fs, const std::optional<std::string>& parent);

enum class Start { kManual, kAuto };
const char* start_name(Start s);  // "manual", "auto"

struct Attr {
  std::string name, value;
};

// What mdevctl keeps of an mdev: /etc/mdevctl.d/PARENT/UUID.
struct Definition {
  std::string parent, uuid, type;
  Start start = Start::kManual;
  std::vector<Attr> attrs;  // in order: mdevctl writes them to the device in this order
};

std::string config_path(const std::string& parent, const std::string& uuid);
// The file's bytes exactly as mdevctl 1.2 writes them (serde_json's pretty printer: two-space
// indent, no newline at the end), so that the same definition is the same file.
std::string config_text(const Definition& d);
// A definition file, validated (it is anyone's input): mdev_type a plain name, start "auto" or
// "manual", attrs a list of objects of one string each.
Result<Definition> parse_config(const std::string& text, const std::string& parent,
                                const std::string& uuid);

struct Mdev {
  std::string uuid, parent, type;
  bool active = false;   // in /sys/bus/mdev/devices
  bool defined = false;  // in /etc/mdevctl.d
  Start start = Start::kManual;
  std::vector<Attr> attrs;
  std::optional<std::string> driver;
  std::optional<int> iommu_group;
};

struct Listing {
  std::vector<Mdev> mdevs;  // by parent, then UUID (mdevctl's order)
  std::vector<std::string> problems;
};

// The active mdevs (with their definitions where there are any), or with `defined` every
// definition (with whether it is active), as `mdevctl list [--defined]`.
Result<Listing> list(const HostFs& fs, bool defined);
// One mdev by UUID, active or defined; nullopt when neither.
Result<std::optional<Mdev>> find(const HostFs& fs, const std::string& uuid);

// A UUID as typed (either case), lowercased; an error naming `field` and the form otherwise.
Result<std::string> parse_uuid(const std::string& text, const std::string& field);
bool looks_like_uuid(const std::string& text);
// A version 4 UUID from the process's randomness.
Result<std::string> random_uuid(const ProcessContext& process);
// A parent as typed: a PCI address in any form pcipass takes, or a plain device name.
Result<std::string> parse_parent(const std::string& text);

struct CreateRequest {
  std::string parent, type;
  std::optional<std::string> uuid;  // nullopt: a random one
  bool dry_run = false;
  bool persist = false;    // also define it in /etc/mdevctl.d (a change set: `pcipass undo`)
  bool autostart = false;  // the definition's start: auto (only with persist)
  std::string command;     // what the change set records as its command
};

struct RemoveRequest {
  std::string uuid;
  bool dry_run = false;
  bool persist = false;  // also delete its definition
  std::string command;
};

struct Report {
  std::string uuid, parent, type;
  bool dry_run = false;
  bool was_active = false, active = false;
  std::optional<std::string> config;  // the definition written or removed
  assign::DurableOutcome durable;     // its change set
  std::vector<assign::Step> steps;
};

Result<Report> create(HostFs& fs, const CreateRequest& req, const assign::Environment& env);
// create's checks and changes without running them (`pcipass apply FILE` puts them in its one
// plan): the first `files` changes are the definition's (with `persist`), then the mdev.
struct CreatePlanned {
  Report report;
  std::vector<change::Change> changes;
  size_t files = 0;
};
Result<CreatePlanned> plan_create(const HostFs& fs, const CreateRequest& req,
                                  const assign::Environment& env);
Result<Report> remove(HostFs& fs, const RemoveRequest& req, const assign::Environment& env);

// start-parent: what mdevctl's `start-parent-mdevs PARENT` does when udev sees PARENT register
// (data/udev/61-pcipass-mdev.rules), as one transaction of the change engine.
enum class StartResult {
  kStarted,        // created by this call (or, in a dry run, would be)
  kAlreadyActive,  // an mdev with its UUID and type is active on the parent: nothing to do
  kConflict,       // its UUID is active as another type or on another parent: left as it is
};
const char* start_result_id(StartResult r);  // "started", "already-active", "conflict"

struct AutoStart {
  std::string uuid, type;
  StartResult result = StartResult::kStarted;
  std::string message, fix;  // for kConflict
};

struct StartParentReport {
  std::string parent;
  std::string dir;  // /etc/mdevctl.d/PARENT
  bool dry_run = false;
  std::vector<AutoStart> mdevs;       // the parent's "auto" definitions, by UUID
  size_t manual = 0;                  // its "manual" definitions, never started here
  std::vector<std::string> problems;  // definition files skipped (not valid)
  std::vector<assign::Step> steps;
  size_t started() const;
  bool ok() const;  // no conflict
};

// Creates every "auto" definition of /etc/mdevctl.d/PARENT that is not active, all or none:
// PARENT must be registered (/sys/class/mdev_bus/PARENT), every type offered, with enough
// available_instances for all, before anything is written; a failed create removes the ones
// this call made. Nothing to create (all active): no write, no journal.
Result<StartParentReport> start_parent(HostFs& fs, const std::string& parent, bool dry_run,
                                       const assign::Environment& env);

}  // namespace pcipass::mdev
