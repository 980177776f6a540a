package ec2

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of [Config].
const (
	// DefaultShutdownBehavior makes an instance that shuts itself down
	// go away instead of lingering (and costing) as a stopped instance.
	DefaultShutdownBehavior = "terminate"
	// DefaultMaxAttempts is how many times one EC2 call is tried in all
	// when EC2 throttles it (RequestLimitExceeded) or fails transiently.
	DefaultMaxAttempts = 5
	// DefaultMaxBackoff caps the wait between two attempts of one call.
	DefaultMaxBackoff = 20 * time.Second
)

// EC2's own limits that [Config.Validate] checks before AWS would.
const (
	maxTags        = 50 // per resource
	ownTags        = 5  // provider.TagPool, TagCluster, TagIntent, TagNode and Name
	maxTagKeyLen   = 128
	maxTagValueLen = 256
	// maxUserData is EC2's limit on user data before base64 encoding.
	maxUserData = 16 * 1024
)

// Config says where and how the provider launches instances. Credentials
// are not part of it: they come from the standard AWS chain (environment,
// shared config files, instance role), so drover never stores them.
type Config struct {
	// Region is the AWS region; empty means the one of the standard
	// chain (AWS_REGION, the shared config file).
	Region string
	// InstanceType is the EC2 instance type, such as "m7i.large". Required.
	InstanceType string
	// ImageID is the AMI the instances boot. Required. It must run
	// cloud-init (or another agent that runs shell user data) and, unless
	// the agent's DownloadURL is set, have drover at /usr/local/bin/drover.
	ImageID string
	// KeyName is the EC2 key pair for ssh; empty means none.
	KeyName string
	// SecurityGroupIDs are the instances' security groups; empty means
	// the default group of the VPC.
	SecurityGroupIDs []string
	// SubnetID places the instances in a subnet; empty means the default
	// subnet of the region's default VPC.
	SubnetID string
	// Spot asks for spot instances instead of on-demand ones.
	Spot bool
	// SpotMaxPrice is the most, in USD per hour, a spot instance may cost,
	// as a decimal string ("0.05"); empty means the on-demand price. Only
	// with Spot.
	SpotMaxPrice string
	// ShutdownBehavior is what happens when an instance shuts itself down:
	// "terminate" (DefaultShutdownBehavior) or "stop".
	ShutdownBehavior string
	// Tags are added to every instance and volume, beside drover's own
	// tags (provider.TagPool and the others), which they cannot replace.
	Tags map[string]string
	// UserData is shell run as root on each new instance after drover's
	// files are in place and before the agent starts. A failure stops the
	// boot script, so the agent never starts on a half-prepared machine.
	UserData string
	// Endpoint is the URL of an EC2-compatible API; empty means AWS's
	// endpoint for the region.
	Endpoint string
	// MaxAttempts is how many times one EC2 call is tried in all;
	// zero means DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the jittered, exponentially growing wait between
	// attempts; zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
}

// WithDefaults returns a copy of c with its zero values filled in.
func (c Config) WithDefaults() Config {
	if c.ShutdownBehavior == "" {
		c.ShutdownBehavior = DefaultShutdownBehavior
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

// Validate reports every bad field of c at once, each error naming it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if strings.TrimSpace(c.InstanceType) == "" {
		bad("instance_type", "required")
	}
	if strings.TrimSpace(c.ImageID) == "" {
		bad("image_id", "required")
	}
	for i, id := range c.SecurityGroupIDs {
		if strings.TrimSpace(id) == "" {
			bad(fmt.Sprintf("security_group_ids[%d]", i), "must not be empty")
		}
	}
	if c.SpotMaxPrice != "" {
		if !c.Spot {
			bad("spot_max_price", "set without spot")
		}
		if p, err := strconv.ParseFloat(c.SpotMaxPrice, 64); err != nil || p <= 0 {
			bad("spot_max_price", "%q is not a positive decimal price", c.SpotMaxPrice)
		}
	}
	switch c.ShutdownBehavior {
	case "", "terminate":
	case "stop":
		if c.Spot {
			bad("shutdown_behavior", "%q is not possible with spot: a one-time spot instance cannot be stopped", c.ShutdownBehavior)
		}
	default:
		bad("shutdown_behavior", "%q is neither %q nor %q", c.ShutdownBehavior, "terminate", "stop")
	}
	if len(c.Tags) > maxTags-ownTags {
		bad("tags", "%d tags, more than the %d EC2 leaves beside drover's own", len(c.Tags), maxTags-ownTags)
	}
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "" || len(k) > maxTagKeyLen:
			bad("tags", "key %q must be 1 to %d characters", k, maxTagKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			bad("tags."+k, "the aws: prefix is reserved by AWS")
		case strings.HasPrefix(k, "drover:"):
			bad("tags."+k, "the drover: prefix is reserved for drover's own tags")
		case len(c.Tags[k]) > maxTagValueLen:
			bad("tags."+k, "value longer than %d characters", maxTagValueLen)
		}
	}
	if len(c.UserData) > maxUserData {
		bad("user_data", "%d bytes, more than EC2's %d", len(c.UserData), maxUserData)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("endpoint", "%q is not an http or https URL", c.Endpoint)
		}
	}
	if c.MaxAttempts < 0 {
		bad("max_attempts", "%d is negative", c.MaxAttempts)
	}
	if c.MaxBackoff < 0 {
		bad("max_backoff", "%s is negative", c.MaxBackoff)
	}
	return errors.Join(errs...)
}
