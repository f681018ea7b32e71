package attest.library.change_window_test

import rego.v1

import data.attest.library.change_window

# request times (UTC)
mon_1000 := 1795428000000000000 # Mon 2026-11-23 10:00

sat_1403 := 1795874580000000000 # Sat 2026-11-28 14:03

fri_1800 := 1795802400000000000 # Fri 2026-11-27 18:00

mon_0759 := 1795420740000000000 # Mon 2026-11-23 07:59

mon_0730 := 1795419000000000000 # Mon 2026-11-23 07:30

sun_0100 := 1795914000000000000 # Sun 2026-11-29 01:00

sun_0300 := 1795921200000000000 # Sun 2026-11-29 03:00

office := {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "08:00", "end": "18:00", "timezone": "UTC"}

params := {"windows": [office], "emergency_groups": ["sre-oncall"]}

container_path := {
	"Pod": "spec.containers[0]",
	"Deployment": "spec.template.spec.containers[0]",
	"StatefulSet": "spec.template.spec.containers[0]",
	"DaemonSet": "spec.template.spec.containers[0]",
	"Job": "spec.template.spec.containers[0]",
	"CronJob": "spec.jobTemplate.spec.template.spec.containers[0]",
}

request(kind, ts) := {
	"request": {
		"operation": "CREATE", "kind": {"kind": kind}, "namespace": "shop", "name": "web",
		"user": {"username": "alice", "groups": ["developers", "system:authenticated"]},
		"timestamp_ns": ts,
	},
	"resource": {"kind": kind, "metadata": {"name": "web", "annotations": {}}, "spec": {"replicas": 2}},
	"namespace": {"name": "shop", "production": true},
	"containers": [{"path": container_path[kind], "type": "container", "name": "app", "image": "gcr.io/company/app:1"}],
	"params": params,
}

violations(doc) := v if {
	v := change_window.violation with input as doc
}

warnings(doc) := w if {
	w := change_window.warn with input as doc
}

messages(doc) := {f.message | some f in violations(doc)}

emergency_fix := "make the change inside a change window, or in an emergency have a member of sre-oncall apply it with the annotation attest.continuu.ms/approval-id: EMERGENCY-<ticket>"

# --- inside and outside ---

test_inside_the_window_allowed_in_every_kind if {
	allowed := {kind |
		some kind, _ in container_path
		count(violations(request(kind, mon_1000))) == 0
	}
	count(allowed) == 6
}

test_outside_the_window_denied_naming_the_next if {
	violations(request("Deployment", sat_1403)) == {{
		"message": "changes to workloads in production namespace shop are allowed only inside a change window: it is Sat 14:03 UTC and the next window opens Mon 08:00 UTC",
		"fix": emergency_fix,
	}}
}

test_outside_denied_in_every_kind if {
	denied := {kind |
		some kind, _ in container_path
		count(violations(request(kind, sat_1403))) == 1
	}
	count(denied) == 6
}

test_window_end_is_exclusive if {
	messages(request("Pod", fri_1800)) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Fri 18:00 UTC and the next window opens Mon 08:00 UTC"}
}

test_next_window_later_the_same_day if {
	messages(request("CronJob", mon_0759)) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Mon 07:59 UTC and the next window opens Mon 08:00 UTC"}
}

test_window_judged_in_its_time_zone if {
	berlin := object.union(office, {"timezone": "Europe/Berlin"})
	doc := object.union(request("Deployment", mon_0730), {"params": {"windows": [berlin]}})

	# 07:30 UTC is 08:30 in Berlin (CET)
	count(violations(doc)) == 0

	# Sunday 03:00 UTC is 04:00 in Berlin, outside the window
	messages(object.union(doc, {"request": {"timestamp_ns": sun_0300}})) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Sun 04:00 Europe/Berlin and the next window opens Mon 08:00 Europe/Berlin"}
}

test_window_across_midnight if {
	night := {"days": ["Sat"], "start": "22:00", "end": "02:00"}
	doc := object.union(request("StatefulSet", sun_0100), {"params": {"windows": [night]}})
	count(violations(doc)) == 0
	messages(object.union(doc, {"request": {"timestamp_ns": sun_0300}})) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Sun 03:00 UTC and the next window opens Sat 22:00 UTC"}
	messages(object.union(doc, {"request": {"timestamp_ns": sat_1403}})) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Sat 14:03 UTC and the next window opens Sat 22:00 UTC"}
}

test_the_earliest_of_several_windows_named if {
	weekend := {"days": ["Sun"], "start": "10:00", "end": "12:00", "timezone": "UTC"}
	doc := object.union(request("Deployment", sat_1403), {"params": {"windows": [office, weekend]}})
	messages(doc) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Sat 14:03 UTC and the next window opens Sun 10:00 UTC"}
}

test_next_week_when_today_has_passed if {
	friday := {"days": ["Fri"], "start": "09:00", "end": "10:00", "timezone": "UTC"}
	doc := object.union(request("Deployment", fri_1800), {"params": {"windows": [friday]}})
	messages(doc) == {"changes to workloads in production namespace shop are allowed only inside a change window: it is Fri 18:00 UTC and the next window opens Fri 09:00 UTC"}
}

test_no_windows_freezes_production if {
	doc := object.union(request("Deployment", mon_1000), {"params": {"windows": [], "emergency_groups": []}})
	violations(doc) == {{
		"message": "changes to workloads in production namespace shop are frozen: no change window is configured",
		"fix": "make the change inside a change window, or add a PolicyException",
	}}
}

test_unknown_time_zone_reported if {
	mars := object.union(office, {"timezone": "Mars/Olympus_Mons"})
	doc := object.union(request("Deployment", mon_1000), {"params": {"windows": [mars]}})
	violations(doc) == {
		{
			"message": "change window windows[0] names the time zone \"Mars/Olympus_Mons\", which ATTEST does not know",
			"fix": "ask your cluster administrators to correct the change-window configuration",
		},
		{
			"message": "changes to workloads in production namespace shop are allowed only inside a change window, and none of the configured windows ever opens",
			"fix": emergency_fix,
		},
	}
}

# --- what is not a change here ---

test_not_production_allowed if {
	count(violations(object.union(request("Deployment", sat_1403), {"namespace": {"production": false}}))) == 0
}

test_metadata_only_update_allowed if {
	doc := object.union(request("Deployment", sat_1403), {
		"request": {"operation": "UPDATE"},
		"resource": {"metadata": {"labels": {"team": "shop"}}},
		"old_resource": {"metadata": {"name": "web"}, "spec": {"replicas": 2}},
	})
	count(violations(doc)) == 0
	count(violations(object.union(doc, {"resource": {"spec": {"replicas": 3}}}))) == 1
}

test_delete_not_judged if {
	count(violations(object.union(request("Deployment", sat_1403), {"request": {"operation": "DELETE"}}))) == 0
}

test_controlled_pods_not_judged if {
	doc := object.union(request("Pod", sat_1403), {"resource": {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]}}})
	count(violations(doc)) == 0
}

test_objects_without_pod_specs_not_judged if {
	count(violations(object.union(request("Deployment", sat_1403), {"containers": []}))) == 0
}

# --- emergencies ---

emergency(doc) := object.union(doc, {
	"request": {"user": {"username": "alice", "groups": ["developers", "sre-oncall"]}},
	"resource": {"metadata": {"annotations": {"attest.continuu.ms/approval-id": "EMERGENCY-123"}}},
})

test_emergency_change_passes_with_warning if {
	doc := emergency(request("Deployment", sat_1403))
	count(violations(doc)) == 0
	warnings(doc) == {{
		"message": "emergency change EMERGENCY-123 outside the change window by alice",
		"fix": "the change is admitted and recorded for review by the change board",
	}}
}

test_emergency_inside_window_is_an_ordinary_change if {
	doc := emergency(request("Pod", mon_1000))
	count(violations(doc)) == 0
	count(warnings(doc)) == 0
}

test_emergency_approval_from_outside_the_groups_denied if {
	doc := object.union(emergency(request("CronJob", sat_1403)), {"request": {"user": {"groups": ["developers"]}}})
	violations(doc) == {{
		"message": "changes to workloads in production namespace shop are allowed only inside a change window: it is Sat 14:03 UTC and the next window opens Mon 08:00 UTC, and the approval EMERGENCY-123 does not count because alice is in none of the emergency groups",
		"fix": emergency_fix,
	}}
	count(warnings(doc)) == 0
}

test_emergency_group_without_approval_denied if {
	doc := object.union(emergency(request("Deployment", sat_1403)), {"resource": {"metadata": {"annotations": {"attest.continuu.ms/approval-id": "CHG-42"}}}})
	count(violations(doc)) == 1
	count(warnings(doc)) == 0
	doc2 := object.union(emergency(request("Deployment", sat_1403)), {"resource": {"metadata": {"annotations": {"attest.continuu.ms/approval-id": "EMERGENCY-"}}}})
	count(violations(doc2)) == 1
}
