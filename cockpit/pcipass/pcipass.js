/* The Passthrough page: a view of `pcipass ... --json` and nothing else.
 *
 * Rules this file keeps (issue 12; docs/json.md has the documents):
 * - pcipass's JSON is the only source of a verdict: the page never decides whether a device or
 *   group can be assigned, it shows what pcipass says and runs what the user asks for.
 * - Every string from pcipass reaches the DOM as text (textContent, text nodes, attribute
 *   values), never as markup: device, driver and process names come from the host and may be
 *   hostile (docs/hostile-input.md).
 * - A refusal or failure is shown as pcipass gives it (its message and fix, verbatim).
 * - Writes show their plan first (`--dry-run --json`) and run only when the user applies it.
 */
"use strict";

(function () {
    const _ = cockpit.gettext;

    /* Builds an element; children that are not nodes become text nodes (never parsed). */
    function h(tag, attrs, ...children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(attrs || {})) {
            if (value === undefined || value === null || value === false)
                continue;
            if (key === "onclick")
                node.addEventListener("click", value);
            else
                node.setAttribute(key, String(value));
        }
        for (const child of children.flat(Infinity)) {
            if (child === undefined || child === null || child === false)
                continue;
            node.append(child instanceof Node ? child : document.createTextNode(String(child)));
        }
        return node;
    }

    function fill(id, ...children) {
        const node = document.getElementById(id);
        node.replaceChildren(...children.flat(Infinity).filter(c => c));
        return node;
    }

    function parse(text) {
        try {
            return JSON.parse(text);
        } catch (e) {
            return null;
        }
    }

    /* Runs `pcipass ARGS --json`. Resolves with {doc, stderr} when pcipass printed a document of
     * its own (check exits 1 or 3 and plan exits 1 with a complete document: they are results, not
     * failures); rejects with {error} otherwise: pcipass's {"error": {...}} object as printed, or,
     * when pcipass printed none (not installed, no superuser), Cockpit's own message. */
    function pcipass(args, write) {
        const argv = ["pcipass"].concat(args, ["--json"]);
        return new Promise((resolve, reject) => {
            cockpit.spawn(argv, { superuser: write ? "require" : "try", err: "message" })
                .then((out, stderr) => {
                    const doc = parse(out);
                    if (doc && doc.schema)
                        resolve({ doc, stderr: stderr || "", argv });
                    else if (doc && doc.error)
                        reject({ error: doc.error, argv });
                    else
                        reject({ error: { message: _("pcipass printed no JSON document") }, argv });
                }, (ex, out) => {
                    const doc = parse(out || "");
                    if (doc && doc.schema)
                        resolve({ doc, stderr: ex.message || "", argv, exit_status: ex.exit_status });
                    else if (doc && doc.error)
                        reject({ error: doc.error, argv, exit_status: ex.exit_status });
                    else
                        reject({ error: { message: cockpit.message(ex) }, argv, exit_status: ex.exit_status });
                });
        });
    }

    function commandLine(argv) {
        return argv.join(" ");
    }

    /* pcipass's error object, each field as given. */
    function errorBox(failure) {
        const e = failure.error || {};
        return h("div", { class: "error", role: "alert" },
                 h("p", { class: "error-head" },
                   e.kind ? [h("span", { class: "badge badge-fail error-kind" }, e.kind), " "] : null,
                   h("span", { class: "error-message" }, e.message || "")),
                 e.fix ? h("p", { class: "error-fix" }, h("span", { class: "label" }, _("Fix: ")),
                           h("span", { class: "fix-text" }, e.fix)) : null,
                 e.path ? h("p", { class: "error-path" }, h("span", { class: "label" }, _("Path: ")),
                            h("code", {}, e.path)) : null,
                 failure.argv ? h("p", { class: "command" }, h("code", {}, commandLine(failure.argv))) : null);
    }

    function badge(text, kind) {
        return h("span", { class: "badge badge-" + kind }, text);
    }

    /* CSS class for a value pcipass reports; the class only colours, the text is pcipass's. */
    function statusClass(status) {
        return { PASS: "pass", WARN: "warn", FAIL: "fail" }[status] || "info";
    }

    function verdictClass(verdict) {
        return { ready: "pass", "needs-group": "warn", bridge: "info", "nothing-to-do": "info" }[verdict] || "fail";
    }

    /* ---- readiness: pcipass check --json ---- */

    function renderCheck(doc) {
        const s = doc.summary || {};
        return [
            h("p", { class: "summary" },
              h("span", { id: "readiness-worst" }, badge(doc.worst, statusClass(doc.worst))), " ",
              cockpit.format(_("$0 pass, $1 warn, $2 fail"), s.pass, s.warn, s.fail)),
            h("table", { class: "table checks" },
              h("thead", {}, h("tr", {}, h("th", {}, _("Status")), h("th", {}, _("Requirement")),
                               h("th", {}, _("Detail")), h("th", {}, _("Fix")))),
              h("tbody", {}, (doc.checks || []).map(c =>
                  h("tr", { "data-check": c.id },
                    h("td", { class: "status" }, badge(c.status, statusClass(c.status))),
                    h("td", { class: "title" }, c.title),
                    h("td", { class: "detail" }, c.detail),
                    h("td", { class: "fix" }, c.fix || "")))))
        ];
    }

    /* ---- what pcipass holds: pcipass status --json ---- */

    function renderStatus(doc) {
        const rows = doc.bindings || [];
        if (rows.length === 0)
            return h("p", { class: "empty" }, _("pcipass has bound no device."));
        return h("table", { class: "table bindings" },
                 h("thead", {}, h("tr", {}, h("th", {}, _("Device")), h("th", {}, _("Group")),
                                  h("th", {}, _("Driver now")), h("th", {}, _("Host driver")),
                                  h("th", {}, _("Holds")), h("th", {}, _("Problem")))),
                 h("tbody", {}, rows.map(b =>
                     h("tr", { "data-address": b.address },
                       h("td", { class: "address" }, h("code", {}, b.address)),
                       h("td", { class: "group" }, b.iommu_group === null ? "" : String(b.iommu_group)),
                       h("td", { class: "driver" }, b.current_driver || _("(none)")),
                       h("td", { class: "original" }, b.original_driver || _("(none)")),
                       h("td", { class: "holds" }, badge(b.holds ? _("yes") : _("no"), b.holds ? "pass" : "fail")),
                       h("td", { class: "problem" }, b.problem || "")))));
    }

    /* ---- IOMMU groups: pcipass groups --json, with list --json's verdict per device ---- */

    const state = { groups: null, status: null, verdicts: new Map(), selected: null, detailGeneration: 0 };

    function deviceRow(d) {
        const v = state.verdicts.get(d.address);
        return h("tr", { class: "device", "data-address": d.address, "data-role": d.role },
                 h("td", { class: "address" }, h("code", {}, d.address)),
                 h("td", { class: "name" }, d.name),
                 h("td", { class: "kind" }, d.kind),
                 h("td", { class: "driver" }, d.driver || _("(none)")),
                 h("td", { class: "role" }, d.role),
                 h("td", { class: "verdict-cell" },
                   h("span", { class: "verdict" }, v ? badge(v.verdict, verdictClass(v.verdict)) : ""),
                   h("div", { class: "reason" }, v ? v.reason : "")));
    }

    function renderGroup(g) {
        const selected = state.selected === g.id;
        return h("div", { class: "group" + (selected ? " selected" : ""), "data-group": g.id },
                 h("div", { class: "group-head" },
                   h("h3", {}, cockpit.format(_("Group $0"), g.id)),
                   h("span", { class: "viable" }, badge(g.viable ? _("viable") : _("not viable"), g.viable ? "pass" : "info")),
                   h("span", { class: "assignable" },
                     badge(g.assignable ? _("assignable") : _("not assignable"), g.assignable ? "pass" : "fail")),
                   h("button", { type: "button", class: "btn btn-primary open-group", "data-group": g.id,
                                 onclick: () => selectGroup(g.id) }, _("Plan"))),
                 (g.must_move || []).length > 0
                     ? h("p", { class: "must-move" }, h("span", { class: "label" }, _("Must move together: ")),
                         g.must_move.map(a => h("code", { class: "must-move-address", "data-address": a }, a)))
                     : null,
                 h("table", { class: "table devices" },
                   h("thead", {}, h("tr", {}, h("th", {}, _("Address")), h("th", {}, _("Device")),
                                    h("th", {}, _("Kind")), h("th", {}, _("Driver")), h("th", {}, _("Role")),
                                    h("th", {}, _("Verdict")))),
                   h("tbody", {}, (g.devices || []).map(deviceRow))));
    }

    function renderGroups() {
        const doc = state.groups;
        if (!doc.iommu_enabled)
            return h("p", { class: "empty", id: "iommu-off" },
                     _("The IOMMU is off: no group can be assigned. See Readiness for the fix."));
        return (doc.groups || []).map(renderGroup);
    }

    /* ---- one group: plan and show ---- */

    function hostUseList(uses, id) {
        if (!uses || uses.length === 0)
            return h("p", { class: "empty", id }, _("Nothing the host uses."));
        return h("ul", { class: "host-uses", id },
                 uses.map(u => h("li", { class: u.critical ? "critical" : "", "data-address": u.address, "data-kind": u.kind },
                                 u.critical ? badge(_("critical"), "fail") : null, " ",
                                 h("code", {}, u.address), " ", h("span", { class: "use-kind" }, u.kind), ": ",
                                 h("span", { class: "use-detail" }, u.detail),
                                 (u.addresses || []).length ? [" (", u.addresses.join(", "), ")"] : null)));
    }

    function renderPlan(plan, stderr) {
        const rows = [];
        for (const g of plan.groups || []) {
            for (const d of g.devices || []) {
                rows.push(h("tr", { "data-address": d.address },
                            h("td", { class: "address" }, h("code", {}, d.address),
                              h("div", { class: "name" }, d.name)),
                            h("td", { class: "driver" }, d.driver || _("(none)")),
                            h("td", { class: "new-driver" }, d.new_driver || _("(none)")),
                            h("td", { class: "action" }, d.action),
                            h("td", { class: "uses" }, (d.host_uses || []).map(u => h("div", {}, u.detail)))));
            }
        }
        return h("div", { id: "plan", "data-verdict": plan.verdict },
                 h("h3", {}, _("Plan"), " ", h("span", { id: "plan-verdict" }, badge(plan.verdict, verdictClass(plan.verdict)))),
                 (plan.refusals || []).map(r =>
                     h("div", { class: "refusal error", "data-id": r.id, "data-address": r.address },
                       h("p", { class: "error-head" }, badge(r.id, "fail"), " ", h("span", { class: "message" }, r.message)),
                       r.fix ? h("p", { class: "error-fix" }, h("span", { class: "label" }, _("Fix: ")),
                                 h("span", { class: "fix" }, r.fix)) : null)),
                 h("table", { class: "table plan-devices" },
                   h("thead", {}, h("tr", {}, h("th", {}, _("Device")),
                                    h("th", {}, _("Driver")), h("th", {}, _("New driver")),
                                    h("th", {}, _("Action")), h("th", {}, _("Host uses")))),
                   h("tbody", {}, rows)),
                 h("h4", {}, _("The host would lose")),
                 hostUseList(plan.host_loses, "host-loses"),
                 (plan.reset || []).length
                     ? [h("h4", {}, _("Reset between VM starts")),
                         h("ul", { class: "resets" }, plan.reset.map(r =>
                             h("li", { "data-address": r.address }, h("code", {}, r.address), " ",
                               badge(r.verdict, r.verdict === "function" || r.verdict === "bus_alone" ? "pass" : "warn"), " ",
                               r.reason, r.fix ? [" — ", r.fix] : null)))]
                     : null,
                 stderr ? h("pre", { class: "stderr" }, stderr) : null);
    }

    function renderShow(show) {
        return h("div", { id: "show" },
                 h("h3", {}, _("Devices")),
                 (show.devices || []).map(d =>
                     h("div", { class: "show-device", "data-address": d.address },
                       h("h4", {}, h("code", {}, d.address), " ", [d.vendor_name, d.device_name].filter(x => x).join(" ")),
                       d.passthrough
                           ? h("p", { class: "passthrough" }, badge(d.passthrough.verdict, verdictClass(d.passthrough.verdict)), " ",
                               h("span", { class: "reason" }, d.passthrough.reason))
                           : null,
                       h("dl", {},
                         h("dt", {}, _("Driver")), h("dd", { class: "driver" }, d.driver || _("(none)")),
                         h("dt", {}, _("Modules")), h("dd", {}, (d.modules || []).join(", ")),
                         d.reset ? [h("dt", {}, _("Reset")), h("dd", { class: "reset" }, d.reset.verdict, ": ", d.reset.reason)] : null,
                         d.numa_node !== null && d.numa_node !== undefined ? [h("dt", {}, _("NUMA node")), h("dd", {}, String(d.numa_node))] : null),
                       h("p", { class: "label" }, _("The host uses it for:")),
                       hostUseList(d.host_uses),
                       (d.caveats || []).map(c => h("p", { class: "caveat", "data-id": c.id }, badge(_("caveat"), "warn"), " ", c.text)))));
    }

    /* Addresses a run acts on, all from pcipass: what its groups document says must move (bind,
     * persist), and what its status says it has bound in the group (release). */
    function bindTargets(g) {
        return g.must_move || [];
    }

    function releaseTargets(g) {
        const bindings = (state.status && state.status.bindings) || [];
        return bindings.filter(b => b.iommu_group === g.id).map(b => b.address);
    }
    function selectGroup(id) {
        const g = (state.groups.groups || []).find(x => x.id === id);
        if (!g)
            return;
        state.selected = id;
        clearResult();
        for (const node of document.querySelectorAll("#groups-body .group"))
            node.classList.toggle("selected", node.getAttribute("data-group") === String(id));
        const generation = ++state.detailGeneration;
        const section = document.getElementById("detail");
        section.hidden = false;
        section.removeAttribute("data-ready");
        fill("detail-title", cockpit.format(_("IOMMU group $0"), id));
        const targets = bindTargets(g);
        const bound = releaseTargets(g);
        // The plan of what must move; once it moved, the plan of what pcipass holds ("nothing-to-do").
        const planTargets = targets.length ? targets : bound;
        fill("detail-body", h("p", { class: "loading" }, _("Running pcipass plan and show…")));
        const all = (g.devices || []).map(d => d.address);
        const planned = planTargets.length
            ? pcipass(["plan"].concat(planTargets), false).then(r => renderPlan(r.doc, r.stderr), errorBox)
            : Promise.resolve(h("p", { class: "empty" }, _("pcipass lists nothing that must move in this group.")));
        const shown = all.length
            ? pcipass(["show"].concat(all), false).then(r => renderShow(r.doc), errorBox)
            : Promise.resolve(null);
        Promise.all([planned, shown]).then(([planNode, showNode]) => {
            if (generation !== state.detailGeneration)
                return;
            fill("detail-body", planNode, renderActions(targets, bound),
                 h("div", { id: "run" }), showNode);
            section.setAttribute("data-ready", String(generation));
        });
    }

    /* ---- bind / persist / release: dry run first, then the run ---- */

    const ACTIONS = [
        { id: "bind", label: _("Bind to vfio-pci"), args: ["bind"], release: false },
        { id: "persist", label: _("Bind and persist"), args: ["bind", "--persist"], release: false },
        { id: "release", label: _("Release"), args: ["release"], release: true },
    ];

    function renderActions(targets, bound) {
        const rows = [];
        if (targets.length)
            rows.push(h("p", { class: "label" }, _("Must move: "), targets.map(a => h("code", {}, a))));
        if (bound.length)
            rows.push(h("p", { class: "label" }, _("Bound by pcipass: "), bound.map(a => h("code", {}, a))));
        const buttons = ACTIONS.filter(a => (a.release ? bound : targets).length > 0)
            .map(a => h("button", { type: "button", class: "btn btn-secondary", id: a.id,
                                    onclick: () => preview(a, a.release ? bound : targets) }, a.label));
        if (buttons.length === 0)
            return null;
        return h("div", { id: "actions" }, rows, h("div", { class: "buttons" }, buttons));
    }

    function setButtons(disabled) {
        for (const b of document.querySelectorAll("#actions button, #run button"))
            b.disabled = disabled;
    }

    function renderSteps(steps) {
        if (!steps || steps.length === 0)
            return h("p", { class: "empty" }, _("No step: nothing to change."));
        return h("ol", { class: "steps" }, steps.map(s =>
            h("li", { "data-kind": s.kind },
              h("span", { class: "step-kind" }, s.kind), " ", h("code", {}, s.path),
              s.data !== undefined && s.data !== "" ? [" ← ", h("code", { class: "step-data" }, JSON.stringify(s.data))] : null)));
    }

    /* bind/1 and release/1: which device goes from which driver to which. */
    function renderRunDoc(doc) {
        const moves = (doc.bound || []).map(b => h("li", { "data-address": b.address },
                                                  h("code", {}, b.address), ": ", b.from || _("(none)"), " → ", doc.driver))
            .concat((doc.released || []).map(r => h("li", { "data-address": r.address },
                                                     h("code", {}, r.address), ": ", r.from || _("(none)"), " → ", r.to || _("(none)"))));
        return [
            h("ul", { class: "moves" }, moves),
            (doc.unchanged || []).length ? h("p", { class: "unchanged" }, _("Unchanged: "), doc.unchanged.join(" ")) : null,
            doc.persist ? h("p", { class: "persist" }, cockpit.format(_("Recorded in $0: $1"), doc.persist.store,
                                                                        (doc.persist.devices || []).join(" ")),
                            doc.persist.unit_enabled ? _(" (boot unit enabled)") : null) : null,
            (doc.warnings || []).map(w => h("p", { class: "warning" }, badge(_("warning"), "warn"), " ", w)),
            h("details", { class: "steps-box" }, h("summary", {}, cockpit.format(_("$0 steps"), (doc.steps || []).length)),
              renderSteps(doc.steps)),
        ];
    }

    function clearResult() {
        const last = document.getElementById("last-result");
        if (last)
            last.remove();
    }

    function preview(action, targets) {
        const args = action.args.concat(targets);
        clearResult();
        setButtons(true);
        fill("run", h("p", { class: "loading" }, _("Running the dry run…")));
        pcipass(args.concat(["--dry-run"]), true).then(r => {
            fill("run", h("div", { id: "run-preview", "data-action": action.id },
                          h("h3", {}, _("Dry run")),
                          h("p", { class: "command" }, h("code", { id: "run-command" }, commandLine(r.argv))),
                          renderRunDoc(r.doc),
                          h("div", { class: "buttons" },
                            h("button", { type: "button", class: "btn btn-primary", id: "run-apply",
                                          onclick: () => run(action, args) }, cockpit.format(_("Apply: $0"), action.label)),
                            h("button", { type: "button", class: "btn btn-link", id: "run-cancel",
                                          onclick: () => { fill("run"); setButtons(false); } }, _("Cancel")))));
            setButtons(false);
        }, failure => {
            fill("run", h("div", { id: "run-refused", "data-action": action.id }, h("h3", {}, _("Dry run")), errorBox(failure)));
            setButtons(false);
        });
    }

    function run(action, args) {
        setButtons(true);
        fill("run", h("p", { class: "loading" }, _("Running…")));
        const selected = state.selected;
        pcipass(args, true).then(r => {
            reload().then(() => {
                selectGroup(selected);
                // The detail panel is rebuilt; the result goes above it once it is there.
                showResult(h("div", { id: "run-result", "data-action": action.id },
                             h("h3", {}, _("Done")), h("p", { class: "command" }, h("code", {}, commandLine(r.argv))),
                             renderRunDoc(r.doc)));
            });
        }, failure => {
            fill("run", h("div", { id: "run-failed", "data-action": action.id }, h("h3", {}, _("Failed")), errorBox(failure)));
            setButtons(false);
            reload();
        });
    }

    function showResult(node) {
        let result = document.getElementById("last-result");
        if (!result) {
            result = h("div", { id: "last-result" });
            const section = document.getElementById("detail");
            section.insertBefore(result, document.getElementById("detail-body"));
        }
        result.replaceChildren(node);
    }

    /* ---- the whole page ---- */

    function reload() {
        const check = pcipass(["check"], false).then(r => fill("readiness-body", renderCheck(r.doc)),
                                                       f => fill("readiness-body", errorBox(f)));
        const status = pcipass(["status"], false).then(r => {
            state.status = r.doc;
            fill("bindings-body", renderStatus(r.doc));
        }, f => {
            state.status = null;
            fill("bindings-body", errorBox(f));
        });
        const list = pcipass(["list"], false).then(r => {
            state.verdicts = new Map((r.doc.devices || []).map(d => [d.address, d.passthrough]));
        }, () => { state.verdicts = new Map() });
        const groups = pcipass(["groups"], false);
        const shown = Promise.all([groups, list]).then(([r]) => {
            state.groups = r.doc;
            fill("groups-body", renderGroups());
        }, f => fill("groups-body", errorBox(f)));
        return Promise.all([check, status.then(() => shown)]).then(() => {
            document.body.setAttribute("data-loaded", String(Number(document.body.getAttribute("data-loaded") || 0) + 1));
        });
    }

    document.addEventListener("DOMContentLoaded", () => {
        document.getElementById("refresh").addEventListener("click", () => {
            reload().then(() => { if (state.selected !== null) selectGroup(state.selected) });
        });
        reload();
    });
}());
