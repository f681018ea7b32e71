# METADATA
# title: Change windows
# description: >-
#   Workloads in production namespaces are created and changed only inside the configured change windows, judged
#   on the time of the request (input.request.timestamp_ns) in each window's time zone. A window whose end is not
#   after its start runs past midnight into the next day. Outside every window the message names the next one to
#   open; with no windows configured, production is frozen. An emergency change passes outside the windows when
#   the requester is in one of emergency_groups and the object carries the annotation
#   attest.continuu.ms/approval-id: EMERGENCY-<ticket>; it is always reported. Updates that leave spec alone
#   (labels, annotations) and objects a controller owns (the Pods of a ReplicaSet) are not changes here.
# custom:
#   name: change-window
#   severity: high
#   mode: off
#   remediation: make the change inside a change window, or add a PolicyException
#   compliance:
#     soc2: [CC8.1]
#   parameters:
#     windows:
#       type: array
#       items:
#         type: object
#         additionalProperties: false
#         required: [days, start, end]
#         properties:
#           days:
#             type: array
#             minItems: 1
#             uniqueItems: true
#             items: {enum: [Mon, Tue, Wed, Thu, Fri, Sat, Sun]}
#           start: {type: string, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
#           end: {type: string, pattern: "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}
#           timezone: {type: string, minLength: 1, description: "an IANA time zone such as Europe/Berlin; UTC when unset"}
#       default: [{days: [Mon, Tue, Wed, Thu, Fri], start: "08:00", end: "18:00", timezone: UTC}]
#       description: when changes are allowed; an empty list freezes production
#     emergency_groups:
#       type: array
#       items: {type: string, minLength: 1}
#       default: []
#       description: groups whose members may change production outside the windows with an EMERGENCY- approval ID
package attest.library.change_window

import rego.v1

approval_annotation := "attest.continuu.ms/approval-id"

controlled if {
	some ref in input.resource.metadata.ownerReferences
	ref.controller == true
}

unchanged_update if {
	input.request.operation == "UPDATE"
	input.resource.spec == input.old_resource.spec
}

applies if {
	input.request.operation in {"CREATE", "UPDATE"}
	input.namespace.production == true
	count(input.containers) > 0
	not controlled
	not unchanged_update
}

# --- time ---

now := input.request.timestamp_ns

days := ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

day_index := {d: i | some i, d in days}

timezone(w) := object.get(w, "timezone", "UTC")

# local(tz) is the request time in tz: [day index (Mon = 0), minute of the day, "Sat 14:03"]; undefined for an
# unknown time zone.
local(tz) := [day_index[day], (h * 60) + m, sprintf("%s %02d:%02d", [day, h, m])] if {
	[h, m, _] := time.clock([now, tz])
	day := substring(time.weekday([now, tz]), 0, 3)
}

minutes(hhmm) := (to_number(parts[0]) * 60) + to_number(parts[1]) if parts := split(hhmm, ":")

windows := [w | some w in input.params.windows]

known_timezone(w) if local(timezone(w))

violation contains {"message": msg, "fix": "ask your cluster administrators to correct the change-window configuration"} if {
	applies
	some i, w in windows
	not known_timezone(w)
	msg := sprintf("change window windows[%d] names the time zone %q, which ATTEST does not know", [i, timezone(w)])
}

# open(w) holds when the request falls inside w.
open(w) if {
	[day, minute, _] := local(timezone(w))
	start := minutes(w.start)
	end := minutes(w.end)
	start < end
	days[day] in w.days
	start <= minute
	minute < end
}

# a window whose end is not after its start runs from start on its days to end on the following day
open(w) if {
	[day, minute, _] := local(timezone(w))
	start := minutes(w.start)
	minutes(w.end) <= start
	days[day] in w.days
	start <= minute
}

open(w) if {
	[day, minute, _] := local(timezone(w))
	end := minutes(w.end)
	end <= minutes(w.start)
	days[(day + 6) % 7] in w.days
	minute < end
}

inside if {
	some w in windows
	open(w)
}

# next_opening is [minutes from now, "Mon 08:00 UTC", "Sat 14:03 UTC"] for the window that opens first.
next_opening := sort(openings)[0] if count(openings) > 0

openings contains [delta, sprintf("%s %s %s", [days[d], w.start, tz]), sprintf("%s %s", [now_text, tz])] if {
	some w in windows
	tz := timezone(w)
	[day, minute, now_text] := local(tz)
	some k in numbers.range(0, 7)
	d := (day + k) % 7
	days[d] in w.days
	delta := ((k * 1440) + minutes(w.start)) - minute
	delta > 0
}

# --- emergencies ---

approval := input.resource.metadata.annotations[approval_annotation]

emergency_approval if regex.match(`^EMERGENCY-\S+$`, approval)

emergency_requester if {
	some g in input.request.user.groups
	g in input.params.emergency_groups
}

emergency if {
	emergency_approval
	emergency_requester
}

# --- the decision ---

outside if {
	applies
	not inside
}

violation contains {"message": msg, "fix": fix} if {
	outside
	not emergency
	msg := concat("", [closed_message, ignored_approval])
}

closed_message := sprintf("changes to workloads in production namespace %s are allowed only inside a change window: it is %s and the next window opens %s", [input.namespace.name, next_opening[2], next_opening[1]]) if count(windows) > 0

closed_message := sprintf("changes to workloads in production namespace %s are frozen: no change window is configured", [input.namespace.name]) if count(windows) == 0

closed_message := sprintf("changes to workloads in production namespace %s are allowed only inside a change window, and none of the configured windows ever opens", [input.namespace.name]) if {
	count(windows) > 0
	not next_opening
}

default ignored_approval := ""

ignored_approval := sprintf(", and the approval %s does not count because %s is in none of the emergency groups", [approval, input.request.user.username]) if {
	emergency_approval
	not emergency_requester
}

fix := sprintf("make the change inside a change window, or in an emergency have a member of %s apply it with the annotation %s: EMERGENCY-<ticket>", [concat(", ", sort(input.params.emergency_groups)), approval_annotation]) if count(input.params.emergency_groups) > 0

fix := "make the change inside a change window, or add a PolicyException" if count(input.params.emergency_groups) == 0

warn contains {"message": msg, "fix": "the change is admitted and recorded for review by the change board"} if {
	outside
	emergency
	msg := sprintf("emergency change %s outside the change window by %s", [approval, input.request.user.username])
}
