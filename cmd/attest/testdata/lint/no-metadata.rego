package company.no_metadata

deny[msg] {
	input.resource.spec.hostNetwork == true
	msg := "host network is not allowed"
}
