// Package ec2 is the provider of drover pools whose nodes are EC2
// instances, through the AWS SDK for Go v2. It owns the EC2 calls
// (RunInstances, TerminateInstances, DescribeInstances), the tags that
// tie an instance to its pool, and the boot script (user data) that
// installs and starts `drover agent` with its join token. How many
// instances a pool has, and when to launch or terminate one, is the pool
// manager's business; credentials are the standard AWS chain's.
//
// Every instance carries drover's tags (provider.TagPool, TagCluster,
// TagIntent, TagNode), so [Provider.List] finds it by tag even if the
// server crashed before recording it, and the launch intent is the
// RunInstances ClientToken, so repeating a Launch never starts a second
// instance.
//
// Spot instances are launched by RunInstances with spot market options
// (one-time, terminated on interruption), not by RequestSpotInstances,
// which the original issue named. AWS recommends RunInstances for spot;
// it honours ClientToken, so a repeated Launch is as safe as for
// on-demand; it tags the instance when it is created (RequestSpotInstances
// tags only the request, and the instance later, leaving a window in
// which List could not see it); and it returns the instance ID at once,
// where a spot request must be polled until it is fulfilled.
//
// This provider was tested only against an in-process fake of the EC2
// Query API (provider_test.go: form-encoded requests, XML answers and
// errors as EC2 sends them, driven by the real SDK), never against AWS
// from here.
package ec2
