// pulumi-tfgen-docker writes the schema and bridge metadata that pulumi-resource-docker embeds.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"medusa-deploy.local/toolchain/docker-provider/info"
)

var Version = "5.2.0"

func main() {
	tfgen.Main("docker", Version, info.Provider(Version, nil))
}
