package xattrs

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Typed codecs of bucket settings: each turns the store's value into the
// attribute's text and back, refusing (ErrInvalid) anything malformed.
// Documents (lifecycle, notification) are JSON with the field names of the
// S3 API (as the AWS CLI writes them) on the attribute side and S3's XML on
// the store side.

// EncryptionValue is a bucket's default encryption.
type EncryptionValue struct {
	Algorithm string // "AES256", "aws:kms" or "" (none)
	KMSKeyID  string
}

// FormatEncryption writes "SSE-S3" or "SSE-KMS <key id>" ("" for none).
func FormatEncryption(e EncryptionValue) string {
	switch e.Algorithm {
	case "AES256":
		return "SSE-S3"
	case "aws:kms":
		return strings.TrimSpace("SSE-KMS " + e.KMSKeyID)
	}
	return ""
}

// ParseEncryption reads what FormatEncryption writes.
func ParseEncryption(s string) (EncryptionValue, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 1 && f[0] == "SSE-S3":
		return EncryptionValue{Algorithm: "AES256"}, nil
	case len(f) == 2 && f[0] == "SSE-KMS":
		return EncryptionValue{Algorithm: "aws:kms", KMSKeyID: f[1]}, nil
	}
	return EncryptionValue{}, invalid("encryption %q: want SSE-S3 or SSE-KMS KEY-ID", s)
}

// ObjectLockValue is a bucket's object lock setting with its default retention.
type ObjectLockValue struct {
	Enabled     bool
	Mode        string // Governance, Compliance or ""
	Days, Years int
}

// FormatObjectLock writes "Enabled", or "Enabled GOVERNANCE 30d" /
// "Enabled COMPLIANCE 1y" with a default retention ("" when disabled).
func FormatObjectLock(l ObjectLockValue) string {
	if !l.Enabled {
		return ""
	}
	if l.Mode == "" {
		return "Enabled"
	}
	if l.Years > 0 {
		return fmt.Sprintf("Enabled %s %dy", l.Mode, l.Years)
	}
	return fmt.Sprintf("Enabled %s %dd", l.Mode, l.Days)
}

// ParseObjectLock reads what FormatObjectLock writes; "Enabled" alone
// clears the default retention.
func ParseObjectLock(s string) (ObjectLockValue, error) {
	f := strings.Fields(s)
	bad := invalid("object lock %q: want Enabled, or Enabled GOVERNANCE|COMPLIANCE <N>d|<N>y", s)
	if len(f) == 0 || f[0] != "Enabled" || len(f) == 2 || len(f) > 3 {
		return ObjectLockValue{}, bad
	}
	l := ObjectLockValue{Enabled: true}
	if len(f) == 1 {
		return l, nil
	}
	switch m := strings.ToUpper(f[1]); m {
	case Governance, Compliance:
		l.Mode = m
	default:
		return ObjectLockValue{}, bad
	}
	num, unit := f[2][:len(f[2])-1], f[2][len(f[2])-1]
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 36500 {
		return ObjectLockValue{}, bad
	}
	switch unit {
	case 'd':
		l.Days = n
	case 'y':
		if n > 100 {
			return ObjectLockValue{}, bad
		}
		l.Years = n
	default:
		return ObjectLockValue{}, bad
	}
	return l, nil
}

// ParseVersioning accepts Enabled or Suspended.
func ParseVersioning(s string) (string, error) {
	switch v := strings.TrimSpace(s); v {
	case "Enabled", "Suspended":
		return v, nil
	}
	return "", invalid("versioning %q: want Enabled or Suspended", s)
}

// CheckPolicy accepts a bucket policy that is one JSON object.
func CheckPolicy(s string) error {
	var v map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	if err := d.Decode(&v); err != nil || d.More() {
		return invalid("policy: not one JSON object: %v", err)
	}
	if _, ok := v["Statement"]; !ok {
		return invalid("policy: no Statement")
	}
	return nil
}

// LifecycleConfiguration is S3's lifecycle document.
type LifecycleConfiguration struct {
	XMLName xml.Name        `xml:"LifecycleConfiguration" json:"-"`
	Rules   []LifecycleRule `xml:"Rule" json:"Rules"`
}

// LifecycleRule is one rule.
type LifecycleRule struct {
	ID                             string                          `xml:"ID,omitempty" json:"ID,omitempty"`
	Status                         string                          `xml:"Status" json:"Status"`
	Prefix                         *string                         `xml:"Prefix,omitempty" json:"Prefix,omitempty"`
	Filter                         *LifecycleFilter                `xml:"Filter,omitempty" json:"Filter,omitempty"`
	Expiration                     *Expiration                     `xml:"Expiration,omitempty" json:"Expiration,omitempty"`
	Transitions                    []Transition                    `xml:"Transition,omitempty" json:"Transitions,omitempty"`
	NoncurrentVersionExpiration    *NoncurrentVersionExpiration    `xml:"NoncurrentVersionExpiration,omitempty" json:"NoncurrentVersionExpiration,omitempty"`
	NoncurrentVersionTransitions   []NoncurrentVersionTransition   `xml:"NoncurrentVersionTransition,omitempty" json:"NoncurrentVersionTransitions,omitempty"`
	AbortIncompleteMultipartUpload *AbortIncompleteMultipartUpload `xml:"AbortIncompleteMultipartUpload,omitempty" json:"AbortIncompleteMultipartUpload,omitempty"`
}

// LifecycleFilter selects the objects of a rule.
type LifecycleFilter struct {
	Prefix                *string       `xml:"Prefix,omitempty" json:"Prefix,omitempty"`
	Tag                   *KeyValue     `xml:"Tag,omitempty" json:"Tag,omitempty"`
	ObjectSizeGreaterThan *int64        `xml:"ObjectSizeGreaterThan,omitempty" json:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64        `xml:"ObjectSizeLessThan,omitempty" json:"ObjectSizeLessThan,omitempty"`
	And                   *LifecycleAnd `xml:"And,omitempty" json:"And,omitempty"`
}

// LifecycleAnd combines conditions.
type LifecycleAnd struct {
	Prefix                *string    `xml:"Prefix,omitempty" json:"Prefix,omitempty"`
	Tags                  []KeyValue `xml:"Tag,omitempty" json:"Tags,omitempty"`
	ObjectSizeGreaterThan *int64     `xml:"ObjectSizeGreaterThan,omitempty" json:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64     `xml:"ObjectSizeLessThan,omitempty" json:"ObjectSizeLessThan,omitempty"`
}

// KeyValue is one tag of a lifecycle filter.
type KeyValue struct {
	Key   string `xml:"Key" json:"Key"`
	Value string `xml:"Value" json:"Value"`
}

// Expiration ends current versions.
type Expiration struct {
	Days                      *int    `xml:"Days,omitempty" json:"Days,omitempty"`
	Date                      *string `xml:"Date,omitempty" json:"Date,omitempty"`
	ExpiredObjectDeleteMarker *bool   `xml:"ExpiredObjectDeleteMarker,omitempty" json:"ExpiredObjectDeleteMarker,omitempty"`
}

// Transition moves current versions to a storage class.
type Transition struct {
	Days         *int    `xml:"Days,omitempty" json:"Days,omitempty"`
	Date         *string `xml:"Date,omitempty" json:"Date,omitempty"`
	StorageClass string  `xml:"StorageClass" json:"StorageClass"`
}

// NoncurrentVersionExpiration ends old versions.
type NoncurrentVersionExpiration struct {
	NoncurrentDays          *int `xml:"NoncurrentDays,omitempty" json:"NoncurrentDays,omitempty"`
	NewerNoncurrentVersions *int `xml:"NewerNoncurrentVersions,omitempty" json:"NewerNoncurrentVersions,omitempty"`
}

// NoncurrentVersionTransition moves old versions.
type NoncurrentVersionTransition struct {
	NoncurrentDays          *int   `xml:"NoncurrentDays,omitempty" json:"NoncurrentDays,omitempty"`
	NewerNoncurrentVersions *int   `xml:"NewerNoncurrentVersions,omitempty" json:"NewerNoncurrentVersions,omitempty"`
	StorageClass            string `xml:"StorageClass" json:"StorageClass"`
}

// AbortIncompleteMultipartUpload cleans up uploads.
type AbortIncompleteMultipartUpload struct {
	DaysAfterInitiation *int `xml:"DaysAfterInitiation,omitempty" json:"DaysAfterInitiation,omitempty"`
}

// NotificationConfiguration is S3's notification document.
type NotificationConfiguration struct {
	XMLName xml.Name             `xml:"NotificationConfiguration" json:"-"`
	Queues  []QueueConfiguration `xml:"QueueConfiguration" json:"QueueConfigurations,omitempty"`
	Topics  []TopicConfiguration `xml:"TopicConfiguration" json:"TopicConfigurations,omitempty"`
	Lambdas []LambdaFunction     `xml:"CloudFunctionConfiguration" json:"LambdaFunctionConfigurations,omitempty"`
}

// QueueConfiguration sends events to a queue (MinIO's webhook and other
// targets are queues: arn:minio:sqs::ID:webhook).
type QueueConfiguration struct {
	ID     string              `xml:"Id,omitempty" json:"Id,omitempty"`
	Arn    string              `xml:"Queue" json:"QueueArn"`
	Alias  string              `xml:"-" json:"Queue,omitempty"` // the XML element's name, as SDKs spell it: taken as QueueArn
	Events []string            `xml:"Event" json:"Events"`
	Filter *NotificationFilter `xml:"Filter,omitempty" json:"Filter,omitempty"`
}

// TopicConfiguration sends events to a topic.
type TopicConfiguration struct {
	ID     string              `xml:"Id,omitempty" json:"Id,omitempty"`
	Arn    string              `xml:"Topic" json:"TopicArn"`
	Alias  string              `xml:"-" json:"Topic,omitempty"`
	Events []string            `xml:"Event" json:"Events"`
	Filter *NotificationFilter `xml:"Filter,omitempty" json:"Filter,omitempty"`
}

// LambdaFunction sends events to a function.
type LambdaFunction struct {
	ID     string              `xml:"Id,omitempty" json:"Id,omitempty"`
	Arn    string              `xml:"CloudFunction" json:"LambdaFunctionArn"`
	Alias  string              `xml:"-" json:"CloudFunction,omitempty"`
	Events []string            `xml:"Event" json:"Events"`
	Filter *NotificationFilter `xml:"Filter,omitempty" json:"Filter,omitempty"`
}

// NotificationFilter selects keys by prefix and suffix.
type NotificationFilter struct {
	Key KeyFilter `xml:"S3Key" json:"Key"`
}

// KeyFilter holds the rules.
type KeyFilter struct {
	Rules []FilterRule `xml:"FilterRule" json:"FilterRules"`
}

// FilterRule is a prefix or suffix rule.
type FilterRule struct {
	Name  string `xml:"Name" json:"Name"`
	Value string `xml:"Value" json:"Value"`
}

// decodeStrict reads exactly one JSON value into v, refusing unknown fields.
func decodeStrict(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// LifecycleToJSON turns the store's XML into the attribute's JSON.
func LifecycleToJSON(doc []byte) (string, error) {
	var c LifecycleConfiguration
	if err := xml.Unmarshal(doc, &c); err != nil {
		return "", invalid("lifecycle from the store: %v", err)
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// LifecycleFromJSON checks the attribute's JSON and turns it into XML.
func LifecycleFromJSON(s string) ([]byte, error) {
	var c LifecycleConfiguration
	if err := decodeStrict(s, &c); err != nil {
		return nil, invalid("lifecycle: %v (want S3's form, e.g. {\"Rules\":[{\"ID\":\"tmp\",\"Status\":\"Enabled\",\"Filter\":{\"Prefix\":\"tmp/\"},\"Expiration\":{\"Days\":7}}]})", err)
	}
	if len(c.Rules) == 0 {
		return nil, invalid("lifecycle: no Rules (remove the attribute to delete the configuration)")
	}
	for i, r := range c.Rules {
		if r.Status != "Enabled" && r.Status != "Disabled" {
			return nil, invalid("lifecycle rule %d: Status %q: want Enabled or Disabled", i+1, r.Status)
		}
	}
	return xml.Marshal(c)
}

// NotificationToJSON turns the store's XML into the attribute's JSON.
func NotificationToJSON(doc []byte) (string, error) {
	var c NotificationConfiguration
	if err := xml.Unmarshal(doc, &c); err != nil {
		return "", invalid("notification from the store: %v", err)
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// NotificationFromJSON checks the attribute's JSON and turns it into XML.
func NotificationFromJSON(s string) ([]byte, error) {
	var c NotificationConfiguration
	if err := decodeStrict(s, &c); err != nil {
		return nil, invalid("notification: %v (want S3's form, e.g. {\"QueueConfigurations\":[{\"QueueArn\":\"arn:minio:sqs::KFS:webhook\",\"Events\":[\"s3:ObjectCreated:*\"]}]})", err)
	}
	for i := range c.Queues {
		if err := checkTarget(&c.Queues[i].Arn, &c.Queues[i].Alias, c.Queues[i].Events, c.Queues[i].Filter); err != nil {
			return nil, err
		}
	}
	for i := range c.Topics {
		if err := checkTarget(&c.Topics[i].Arn, &c.Topics[i].Alias, c.Topics[i].Events, c.Topics[i].Filter); err != nil {
			return nil, err
		}
	}
	for i := range c.Lambdas {
		if err := checkTarget(&c.Lambdas[i].Arn, &c.Lambdas[i].Alias, c.Lambdas[i].Events, c.Lambdas[i].Filter); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkTarget checks one target, taking the ARN from its alias (the XML
// element's name, which SDKs use in JSON) when the S3 JSON name is absent.
func checkTarget(arnp, alias *string, events []string, f *NotificationFilter) error {
	if *arnp == "" {
		*arnp = *alias
	} else if *alias != "" && *alias != *arnp {
		return invalid("notification target: two different ARNs %q and %q", *arnp, *alias)
	}
	*alias = ""
	arn := *arnp
	if !strings.HasPrefix(arn, "arn:") || strings.Count(arn, ":") < 5 {
		return invalid("notification target %q: not an ARN (arn:minio:sqs::ID:webhook)", arn)
	}
	if len(events) == 0 {
		return invalid("notification target %s: no Events", arn)
	}
	for _, e := range events {
		if !strings.HasPrefix(e, "s3:") {
			return invalid("notification event %q: want a name such as s3:ObjectCreated:*", e)
		}
	}
	if f != nil {
		for _, r := range f.Key.Rules {
			if r.Name != "prefix" && r.Name != "suffix" {
				return invalid("notification filter rule %q: want prefix or suffix", r.Name)
			}
		}
	}
	return nil
}
