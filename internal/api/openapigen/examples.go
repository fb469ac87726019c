package main

import (
	"encoding/json"

	"github.com/opsworker/opsworker/ops"
)

// examples are valid params of each (kind, provider), shown in the
// document. The tests check each against the kind's Validate and the
// schema.
var examples = map[[2]string][]string{
	{ops.KindCDNPurge, ops.ProviderUCDN}: {
		`{"zone_name":"shop","zone_type":"objects","files":["/index.html","https://cdn.example.com/app.css"]}`,
	},
	{ops.KindCDNPurge, ops.ProviderEdgio}: {
		`{"media_path":["https://wpc.0001.edgecastcdn.net/000001/img/*","/css/app.css"],"media_type":"http_large"}`,
		`{"media_path":"/a.png\n/b.png"}`,
	},
	{ops.KindCDNInvalidate, ops.ProviderLeaseweb}: {
		`{"files":["https://cdn.example.com/app.js"]}`,
	},
	{ops.KindCDNDistributionEnsure, ops.ProviderIONOS}: {
		`{"distribution_id":"0b9f5a52-7c1e-4b7e-9d1c-3c8a2d4e5f60","domain":"cdn.example.com","certificate_id":"6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",` +
			`"routing_rules":[{"scheme":"https","prefix":"/api","upstream":{"host":"origin.example.com","caching":true,"waf":true,` +
			`"geo_restrictions":{"block_list":["CN","RU"]},"rate_limit_class":"R100","sni_mode":"distribution"}}]}`,
	},
	{ops.KindServerInstall, ops.ProviderLeaseweb}: {
		`{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","control_panel_id":"CPANEL_PREMIER_100","device":"SATA2TB",` +
			`"hostname":"web01.example.com","partitions":[{"filesystem":"swap","size":4096},{"filesystem":"ext4","mountpoint":"/boot","size":"1024"},{"filesystem":"ext4","mountpoint":"/","size":"*"}],` +
			`"raid":{"level":1,"numberOfDisks":2,"type":"SW"},"ssh_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForTheDocs ops@example.com"],` +
			`"password":"correct-horse-battery","post_install_script":"#!/bin/sh\necho ready","timezone":"Europe/Amsterdam","power_cycle":true}`,
	},
	{ops.KindServerRescue, ops.ProviderLeaseweb}: {
		`{"server_id":"12345","rescue_image_id":"GRML","ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForTheDocs ops@example.com",` +
			`"password":"correct-horse-battery","post_install_script":"#!/bin/sh\necho rescued","power_cycle":false}`,
	},
	{ops.KindInstanceSnapshot, ops.ProviderLeaseweb}: {
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","name":"nightly","replace_existing":true}`,
	},
	{ops.KindVPSSnapshot, ops.ProviderLeaseweb}: {
		`{"vps_id":"4242","name":"before-upgrade"}`,
	},
	{ops.KindASGScale, ops.ProviderLeaseweb}: {
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","desired_amount":3}`,
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","minimum_amount":2,"maximum_amount":6,"cpu_threshold":70,"warmup_time":300,"cooldown_time":600}`,
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","desired_amount":5,"starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T20:00:00Z"}`,
	},
	{ops.KindInstanceResize, ops.ProviderLeaseweb}: {
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","type":"lsw.m3.xlarge"}`,
	},
}

// exampleValues returns the examples of a (kind, provider) as JSON
// values of the document.
func exampleValues(kind, provider string) []any {
	var out []any
	for _, e := range examples[[2]string{kind, provider}] {
		out = append(out, json.RawMessage(e))
	}
	return out
}
