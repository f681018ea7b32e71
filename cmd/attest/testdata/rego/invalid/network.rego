# METADATA
# title: Looks things up
# custom:
#   name: network
package custom.network

violation[{"msg": msg}] {
	resp := http.send({"method": "GET", "url": "https://example.com"})
	msg := sprintf("status %v", [resp.status_code])
}
