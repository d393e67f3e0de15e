package conf

import (
	"fmt"
	"net/url"
	"time"
)

// Notify is who hears of pushes as they happen: webhooks (a JSON POST),
// commands (the JSON on stdin) and Nagios contacts (their notify command,
// with the push in its macros). Sending never holds a push up.
type Notify struct {
	Webhooks []Webhook `yaml:"webhooks"`
	// Commands are argv lists, run without a shell.
	Commands []NotifyCommand `yaml:"commands"`
	// Contacts are names from contacts:, notified with their own command.
	Contacts []string `yaml:"contacts"`
	// Attempts (default 5), Timeout a try (default 10s) and Backoff, the
	// first wait between tries, doubling (default 2s).
	Attempts int      `yaml:"attempts"`
	Timeout  Duration `yaml:"timeout"`
	Backoff  Duration `yaml:"backoff"`
	// Queue bounds the events waiting to be sent (default 1000); past it
	// the oldest is dropped, and counted.
	Queue int `yaml:"queue"`
}

// Webhook is a URL that receives each event as JSON.
type Webhook struct {
	URL string `yaml:"url"`
	// TokenFile holds a bearer token to send with it.
	TokenFile string `yaml:"token_file"`
}

// NotifyCommand is a command's argv.
type NotifyCommand struct {
	Argv []string `yaml:"argv"`
}

func (n *Notify) validate(c *checker, contacts map[string]int) {
	for i, w := range n.Webhooks {
		path := fmt.Sprintf("notify.webhooks.%d", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.errorf(path+".url", "%q is not an http(s) URL", w.URL)
		}
	}
	for i, cmd := range n.Commands {
		if len(cmd.Argv) == 0 || cmd.Argv[0] == "" {
			c.errorf(fmt.Sprintf("notify.commands.%d.argv", i), "required: the program and its arguments")
		}
	}
	checkRefs(c, "notify.contacts", n.Contacts, contacts, "contact")
	if n.Attempts == 0 {
		n.Attempts = 5
	} else if n.Attempts < 0 {
		c.errorf("notify.attempts", "%d: must be positive", n.Attempts)
	}
	setDefault(&n.Timeout, 10*time.Second)
	setDefault(&n.Backoff, 2*time.Second)
	if n.Queue == 0 {
		n.Queue = 1000
	}
}
