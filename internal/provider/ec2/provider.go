package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	ec2sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/drover-dev/drover/internal/provider"
)

// maxClientToken is EC2's limit on a ClientToken, which Launch fills with
// the launch intent.
const maxClientToken = 64

// describePageSize is how many instances List asks for per page, EC2's
// maximum.
const describePageSize = 1000

// listedStates are the instance states List asks EC2 for: every one but
// terminated.
var listedStates = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// Provider launches drover nodes as EC2 instances. It keeps no state of
// its own: everything it knows of an instance is in the instance's tags.
type Provider struct {
	cfg    Config
	client *ec2sdk.Client
}

var _ provider.Provider = (*Provider)(nil)

// New checks cfg and makes a Provider. Credentials and, if cfg.Region is
// empty, the region come from the standard AWS chain (environment, shared
// config files, instance role); they are read when a call needs them, so
// New succeeds without them. Calls throttled by EC2 are retried by the
// SDK's retryer, up to cfg.MaxAttempts in all.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ec2 config: %w", err)
	}
	opts := []func(*config.LoadOptions) error{config.WithRetryer(newRetryer(cfg))}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("ec2 config: region: required (set it, AWS_REGION, or region in the AWS config file)")
	}
	client := ec2sdk.NewFromConfig(awsCfg, func(o *ec2sdk.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Provider{cfg: cfg, client: client}, nil
}

// newRetryer is the SDK's standard retryer (exponential backoff with full
// jitter, and a retry quota so that an outage does not multiply the calls)
// with our attempts and backoff cap. It does not retry capacity errors:
// EC2 answers InsufficientInstanceCapacity with a 500, which the SDK would
// otherwise retry at once, while the pool backs off on its own clock.
func newRetryer(cfg Config) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = cfg.MaxAttempts
			o.MaxBackoff = cfg.MaxBackoff
			// Set explicitly so AWS_NEW_RETRIES_2026 cannot raise the
			// base wait of throttled calls behind our cap.
			o.Backoff = retry.NewExponentialJitterBackoff(cfg.MaxBackoff)
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if isCapacity(err) {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, o.Retryables...)
		})
	}
}

// Launch runs one instance whose user data starts a drover agent (see
// bootScript), tagged with the request's pool, cluster, intent and node
// and the configured tags. The intent is the RunInstances ClientToken, so
// a Launch repeated with the same intent returns the instance of the first
// rather than starting another. Spot instances are one-time requests made
// by RunInstances too, and are terminated when AWS reclaims them.
func (p *Provider) Launch(ctx context.Context, req provider.LaunchRequest) (provider.Machine, error) {
	if err := validateRequest(req); err != nil {
		return provider.Machine{}, fmt.Errorf("launch request: %w", err)
	}
	script := bootScript(req.Agent, req.Node, p.cfg.UserData, "")
	if len(script) > maxUserData {
		return provider.Machine{}, fmt.Errorf("launch node %s: user data: the boot script is %d bytes, more than EC2's %d (shorten user_data or the CA bundle)",
			req.Node, len(script), maxUserData)
	}
	tags := p.tags(req)
	in := &ec2sdk.RunInstancesInput{
		ImageId:                           aws.String(p.cfg.ImageID),
		InstanceType:                      ec2types.InstanceType(p.cfg.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		ClientToken:                       aws.String(req.Intent),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte(script))),
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehavior(p.cfg.ShutdownBehavior),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
		},
	}
	if p.cfg.KeyName != "" {
		in.KeyName = aws.String(p.cfg.KeyName)
	}
	if p.cfg.SubnetID != "" {
		in.SubnetId = aws.String(p.cfg.SubnetID)
	}
	if len(p.cfg.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = append([]string(nil), p.cfg.SecurityGroupIDs...)
	}
	if p.cfg.Spot {
		spot := &ec2types.SpotMarketOptions{
			SpotInstanceType:             ec2types.SpotInstanceTypeOneTime,
			InstanceInterruptionBehavior: ec2types.InstanceInterruptionBehaviorTerminate,
		}
		if p.cfg.SpotMaxPrice != "" {
			spot.MaxPrice = aws.String(p.cfg.SpotMaxPrice)
		}
		in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{
			MarketType:  ec2types.MarketTypeSpot,
			SpotOptions: spot,
		}
		in.TagSpecifications = append(in.TagSpecifications,
			ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeSpotInstancesRequest, Tags: tags})
	}

	out, err := p.client.RunInstances(ctx, in)
	if err != nil {
		if isCapacity(err) {
			return provider.Machine{}, fmt.Errorf("launch node %s: %w: %w", req.Node, provider.ErrCapacity, err)
		}
		return provider.Machine{}, fmt.Errorf("launch node %s: %w", req.Node, err)
	}
	if len(out.Instances) != 1 {
		return provider.Machine{}, fmt.Errorf("launch node %s: EC2 answered with %d instances, want 1", req.Node, len(out.Instances))
	}
	m := machineOf(out.Instances[0])
	// RunInstances may leave the tags out of its answer; they are the
	// ones just asked for.
	if len(m.Tags) == 0 {
		m.Tags = tagMap(tags)
	}
	m.Pool, m.Cluster, m.Intent, m.Node = req.Pool, req.Cluster, req.Intent, req.Node
	return m, nil
}

// Terminate terminates the instance id. An instance EC2 does not know (long
// gone) is not an error.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("terminate: id: required")
	}
	_, err := p.client.TerminateInstances(ctx, &ec2sdk.TerminateInstancesInput{InstanceIds: []string{id}})
	if apiErrorCode(err) == "InvalidInstanceID.NotFound" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminate instance %s: %w", id, err)
	}
	return nil
}

// List returns every instance tagged with pool and cluster that is not
// terminated, reading all pages of DescribeInstances. Stopping and stopped
// instances are reported as [provider.Terminating]: their agent is gone,
// and only terminating them frees what they hold.
func (p *Provider) List(ctx context.Context, pool, cluster string) ([]provider.Machine, error) {
	var errs []error
	if pool == "" {
		errs = append(errs, errors.New("pool: required"))
	}
	if cluster == "" {
		errs = append(errs, errors.New("cluster: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	in := &ec2sdk.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + provider.TagPool), Values: []string{pool}},
			{Name: aws.String("tag:" + provider.TagCluster), Values: []string{cluster}},
			{Name: aws.String("instance-state-name"), Values: listedStates},
		},
		MaxResults: aws.Int32(describePageSize),
	}
	var machines []provider.Machine
	pages := ec2sdk.NewDescribeInstancesPaginator(p.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances of pool %s in cluster %s: %w", pool, cluster, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				machines = append(machines, machineOf(inst))
			}
		}
	}
	return machines, nil
}

// tags are the instance's tags: the configured ones, a Name for the EC2
// console (unless configured), and drover's own, which win.
func (p *Provider) tags(req provider.LaunchRequest) []ec2types.Tag {
	m := map[string]string{"Name": req.Node}
	for k, v := range p.cfg.Tags {
		m[k] = v
	}
	m[provider.TagPool] = req.Pool
	m[provider.TagCluster] = req.Cluster
	m[provider.TagIntent] = req.Intent
	m[provider.TagNode] = req.Node
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]ec2types.Tag, len(keys))
	for i, k := range keys {
		tags[i] = ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])}
	}
	return tags
}

// validateRequest reports every field of req that cannot make an instance.
func validateRequest(req provider.LaunchRequest) error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("%s: %s", field, msg)) }
	for _, f := range []struct{ name, value string }{
		{"pool", req.Pool}, {"cluster", req.Cluster}, {"node", req.Node}, {"intent", req.Intent},
	} {
		if strings.TrimSpace(f.value) == "" {
			bad(f.name, "required")
		} else if len(f.value) > maxTagValueLen {
			bad(f.name, fmt.Sprintf("longer than the %d characters of an EC2 tag value", maxTagValueLen))
		}
	}
	if strings.TrimSpace(req.Agent.ServerURL) == "" {
		bad("agent.server_url", "required")
	}
	if strings.TrimSpace(req.Agent.Token) == "" {
		bad("agent.token", "required")
	}
	if len(req.Intent) > maxClientToken {
		bad("intent", fmt.Sprintf("longer than the %d characters of an EC2 client token", maxClientToken))
	}
	for _, r := range req.Intent {
		if r < 0x21 || r > 0x7e {
			bad("intent", fmt.Sprintf("%q is not printable ASCII, as an EC2 client token must be", req.Intent))
			break
		}
	}
	if strings.ContainsAny(req.Agent.Token, "\r\n") {
		bad("agent.token", "must be one line")
	}
	if u := req.Agent.DownloadURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		bad("agent.download_url", fmt.Sprintf("%q is not an http or https URL", u))
	}
	return errors.Join(errs...)
}

// machineOf is inst as drover sees it.
func machineOf(inst ec2types.Instance) provider.Machine {
	tags := tagMap(inst.Tags)
	m := provider.Machine{
		ID:      aws.ToString(inst.InstanceId),
		Node:    tags[provider.TagNode],
		Pool:    tags[provider.TagPool],
		Cluster: tags[provider.TagCluster],
		Intent:  tags[provider.TagIntent],
		State:   provider.Pending,
		Tags:    tags,
	}
	if inst.State != nil {
		m.State = stateOf(inst.State.Name)
	}
	// The private address first: the server and its nodes usually share
	// a VPC, and many instances have no public one.
	m.Address = aws.ToString(inst.PrivateIpAddress)
	if m.Address == "" {
		m.Address = aws.ToString(inst.PublicIpAddress)
	}
	if inst.LaunchTime != nil {
		m.LaunchedAt = inst.LaunchTime.UTC()
	}
	return m
}

// stateOf maps EC2's instance states to drover's. A state drover does
// not know is taken as pending: the instance exists and serves nothing yet.
func stateOf(s ec2types.InstanceStateName) provider.State {
	switch s {
	case ec2types.InstanceStateNameRunning:
		return provider.Running
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
		return provider.Terminating
	case ec2types.InstanceStateNameTerminated:
		return provider.Terminated
	default:
		return provider.Pending
	}
}

// tagMap is tags as a map; nil if there are none.
func tagMap(tags []ec2types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// capacityCodes are the EC2 error codes that mean "no room now" rather
// than "this request is wrong": AWS lacks the capacity, or the account
// reached a limit. A pool backs off and tries again later.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity":         true,
	"InsufficientCapacity":                 true,
	"InsufficientHostCapacity":             true,
	"InsufficientReservedInstanceCapacity": true,
	"InsufficientFreeAddressesInSubnet":    true,
	"InstanceLimitExceeded":                true,
	"VcpuLimitExceeded":                    true,
	"MaxSpotInstanceCountExceeded":         true,
	"SpotMaxPriceTooLow":                   true,
}

// isCapacity says whether err is one of EC2's capacity errors.
func isCapacity(err error) bool {
	return capacityCodes[apiErrorCode(err)]
}

// apiErrorCode is the EC2 error code in err's chain, or "".
func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}
