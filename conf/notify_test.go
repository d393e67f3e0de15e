package conf

import (
	"os"
	"testing"
	"time"
)

// notifyFile is a config with only a notify section, as Fleet will hold
// it, for testing the section on its own.
type notifyFile struct {
	Notify Notify `yaml:"notify"`
}

func (f *notifyFile) validate(c *checker) { f.Notify.validate(c, "notify") }

func parseNotify(name string, data []byte) (*Notify, error) {
	var f notifyFile
	if err := decode(name, data, &f); err != nil {
		return nil, err
	}
	return &f.Notify, nil
}

// TestExampleNotifyConfig: the documented example is valid, and its
// defaults land.
func TestExampleNotifyConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/notify.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n, err := parseNotify("testdata/notify.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if n.QueueSize != 100 || n.DrainTimeout.D() != 10*time.Second || len(n.Webhooks) != 2 || len(n.Commands) != 1 {
		t.Fatalf("example: %+v", n)
	}
	chat, incidents, pager := n.Webhooks[0], n.Webhooks[1], n.Commands[0]
	if chat.TokenFile != "/etc/immune/chat.token" || !chat.Wants("push_started") || chat.Attempts != 4 || chat.MaxBackoff.D() != time.Minute {
		t.Errorf("chat webhook: %+v", chat)
	}
	want := NotifyRetry{Timeout: Duration(DefaultWebhookTimeout), Attempts: DefaultWebhookAttempts,
		Backoff: Duration(DefaultNotifyBackoff), MaxBackoff: Duration(DefaultNotifyMaxBackoff)}
	if incidents.NotifyRetry != want || incidents.Wants("push_started") || !incidents.Wants("locked") {
		t.Errorf("incidents webhook's defaults: %+v", incidents)
	}
	if pager.Attempts != 1 || pager.Timeout.D() != 30*time.Second || pager.Command[0] != "/usr/local/bin/page-oncall" || pager.Wants("live") {
		t.Errorf("pager command: %+v", pager)
	}
	if empty, err := parseNotify("n.yaml", []byte("notify: {}\n")); err != nil || empty.QueueSize != DefaultNotifyQueue {
		t.Errorf("an empty notify section: %+v, %v", empty, err)
	}
}

// TestBadNotifyConfigs: every mistake is reported with its line and field.
func TestBadNotifyConfigs(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"notify:\n  queue_size: -1\n  drain_timeout: -1s\n",
			"n.yaml:2:3: notify.queue_size: -1: must be positive\nn.yaml:3:3: notify.drain_timeout: -1s: must be positive"},
		{"notify:\n  webhooks:\n    - token_file: /t\n    - url: ftp://x/\n    - url: http://chat.example.com/hook\n      token_file: /t\n    - url: http://127.0.0.1:8080/\n      token_file: /t\n",
			"n.yaml:3:7: notify.webhooks[0].url: required: where the events are POSTed\n" +
				"n.yaml:4:7: notify.webhooks[1].url: \"ftp://x/\" is not an http:// or https:// URL\n" +
				"n.yaml:5:7: notify.webhooks[2].url: the token would cross the network in clear text: use https"},
		{"notify:\n  webhooks:\n    - url: https://x/\n      events: [live, rollback]\n      attempts: -2\n      backoff: 1m\n      max_backoff: 10s\n      timeout: -1s\n",
			"n.yaml:4:22: notify.webhooks[0].events[1]: \"rollback\" is not one of push_started, verdict, rolled_back, reverted, revert_failed, locked, unlocked, failed, live\n" +
				"n.yaml:5:7: notify.webhooks[0].attempts: -2: must be positive\n" +
				"n.yaml:7:7: notify.webhooks[0].max_backoff: 10s is shorter than backoff (1m0s)\n" +
				"n.yaml:8:7: notify.webhooks[0].timeout: -1s: must be positive"},
		{"notify:\n  commands:\n    - events: [live]\n    - command: ['', x]\n",
			"n.yaml:3:7: notify.commands[0].command: required: the program and its arguments, as a list\n" +
				"n.yaml:4:17: notify.commands[1].command[0]: the command is empty"},
		{"notify:\n  webhooks:\n    - url: https://x/\n      retries: 3\n",
			`n.yaml:4: notify.webhooks[0].retries: unknown field "retries"`},
		{"notify:\n  commands:\n    - command: /bin/pager\n",
			"n.yaml:3: notify.commands[0].command: cannot unmarshal !!str `/bin/pager` into []string"},
	} {
		_, err := parseNotify("n.yaml", []byte(tt.text))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s\n got %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

// TestNotifyBackoffDefault: a backoff over the default cap raises the cap
// rather than being refused.
func TestNotifyBackoffDefault(t *testing.T) {
	n, err := parseNotify("n.yaml", []byte("notify:\n  webhooks:\n    - {url: 'https://x/', backoff: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := n.Webhooks[0].NotifyRetry; r.Backoff.D() != 2*time.Minute || r.MaxBackoff.D() != 2*time.Minute {
		t.Errorf("retry: %+v", r)
	}
}
