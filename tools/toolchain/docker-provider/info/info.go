// Package info maps the Terraform docker provider onto the Pulumi package the @pulumi/docker SDK
// speaks to: the token of each resource and the few property names the SDK spells differently from
// the bridge's defaults.
package info

import (
	"context"
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	tfbridgetokens "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

const module = "index"

func token(kind string) string { return "docker:" + module + "/" + kind }

// Provider describes the bridged provider. metadata is the bridge metadata tfgen wrote (nil while
// tfgen itself runs).
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	prov := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(shim.NewProvider()),
		Name:    "docker",
		Version: version,
		// No docs are generated: nothing downloads upstream documentation.
		UpstreamRepoPath: ".",
		Config: map[string]*tfbridge.SchemaInfo{
			// An unset host means DOCKER_HOST, then the local socket.
			"host": {Default: &tfbridge.DefaultInfo{
				ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (interface{}, error) {
					if host := os.Getenv("DOCKER_HOST"); host != "" {
						return host, nil
					}
					return "unix:///var/run/docker.sock", nil
				},
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			// A container's name is unique on its host, so a replacement must delete the old one first
			// (as the released plugin does); creating first fails with "name already in use".
			"docker_container": {Tok: tokens.Type(token("container:Container")), DeleteBeforeReplace: true, Fields: map[string]*tfbridge.SchemaInfo{
				"command":           {Name: "command"},
				"networks_advanced": {Name: "networksAdvanced"},
			}},
			"docker_image":  {Tok: tokens.Type(token("remoteImage:RemoteImage")), Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}},
			"docker_config": {Tok: tokens.Type(token("serviceConfig:ServiceConfig"))},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: tokens.ModuleMember(token("getRemoteImage:getRemoteImage"))},
		},
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
	}
	prov.MustComputeTokens(tfbridgetokens.SingleModule("docker_", module, tfbridgetokens.MakeStandard("docker")))
	return prov
}
