// spdyclient is an independent SPDY client for the streaming server's tests. It speaks SPDY
// through moby/spdystream, the library client-go uses, and behaves like client-go's
// remotecommand (protocols v1..v5) and portforward clients: same upgrade request, same streams
// in the same order, same half-closes and resets.
//
//	spdyclient exec [flags] URL          stdin/stdout/stderr of the remote command on its own;
//	                                     exits with the remote exit code
//	spdyclient portforward [flags] URL PORT
//	                                     sends its stdin on each forwarded connection and
//	                                     prints what comes back
//
// Exit status 125 means the remote reported a failure other than an exit code, 126 that the
// upgrade was refused, 127 a transport or usage error. -report FILE writes the details as JSON.
//
// Built in GOPATH mode against Debian's golang-github-docker-spdystream-dev (see
// test/tools/spdyclient.ts).
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

type report struct {
	Protocol    string `json:"protocol"`
	HTTPStatus  int    `json:"httpStatus"`
	HTTPBody    string `json:"httpBody,omitempty"`
	ErrorStream string `json:"errorStream"`
	ExitCode    int    `json:"exitCode"`
	Message     string `json:"message,omitempty"`
}

var (
	rep        report
	reportPath string
)

func finish(code int) {
	rep.ExitCode = code
	if reportPath != "" {
		b, _ := json.Marshal(rep)
		_ = os.WriteFile(reportPath, b, 0o644)
	}
	os.Exit(code)
}

func fail(code int, format string, args ...interface{}) {
	rep.Message = fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "spdyclient: "+rep.Message)
	finish(code)
}

// bufferedConn reads through the bufio.Reader that parsed the HTTP response, so SPDY frames
// that arrived with the 101 are not lost.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func dial(u *url.URL) net.Conn {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	var conn net.Conn
	var err error
	if u.Scheme == "https" {
		conn, err = tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", host)
	}
	if err != nil {
		fail(127, "dial %s: %v", host, err)
	}
	return conn
}

// upgrade sends the request client-go's SPDY round tripper sends and returns the SPDY
// connection and the negotiated protocol.
func upgrade(rawURL string, protocols []string) (*spdystream.Connection, string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		fail(127, "bad URL: %v", err)
	}
	conn := dial(u)
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		fail(127, "request: %v", err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, p := range protocols {
		req.Header.Add("X-Stream-Protocol-Version", p)
	}
	if err := req.Write(conn); err != nil {
		fail(127, "write request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		fail(127, "read response: %v", err)
	}
	rep.HTTPStatus = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		rep.HTTPBody = string(body)
		fail(126, "unable to upgrade connection: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	rep.Protocol = resp.Header.Get("X-Stream-Protocol-Version")
	sconn, err := spdystream.NewConnection(&bufferedConn{Conn: conn, r: br}, false)
	if err != nil {
		fail(127, "spdy: %v", err)
	}
	go sconn.Serve(spdystream.NoOpStreamHandler)
	return sconn, rep.Protocol
}

func createStream(conn *spdystream.Connection, headers http.Header) *spdystream.Stream {
	s, err := conn.CreateStream(headers, nil, false)
	if err != nil {
		fail(127, "create stream %v: %v", headers, err)
	}
	if err := s.WaitTimeout(30 * time.Second); err != nil {
		fail(127, "stream %v not accepted: %v", headers, err)
	}
	return s
}

type terminalSize struct {
	Width  uint16
	Height uint16
}

func protocolVersion(p string) int {
	if strings.HasPrefix(p, "v") {
		if n, err := strconv.Atoi(strings.SplitN(p[1:], ".", 2)[0]); err == nil {
			return n
		}
	}
	return 1
}

func execCmd(args []string) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	stdin := fs.Bool("stdin", false, "send stdin")
	stdout := fs.Bool("stdout", true, "receive stdout")
	stderr := fs.Bool("stderr", true, "receive stderr (ignored with -tty)")
	tty := fs.Bool("tty", false, "terminal session")
	sizes := fs.String("sizes", "", "terminal sizes to send, e.g. 80x24,100x30")
	protocols := fs.String("protocols", "v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io", "offered protocols")
	fs.StringVar(&reportPath, "report", "", "write a JSON report here")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fail(127, "usage: spdyclient exec [flags] URL")
	}
	conn, protocol := upgrade(fs.Arg(0), strings.Split(*protocols, ","))
	version := protocolVersion(protocol)

	// client-go streamProtocolV2/V3 createStreams: error, stdin, stdout, stderr, resize.
	headers := http.Header{}
	headers.Set("streamType", "error")
	errorStream := createStream(conn, headers)
	var remoteStdin, remoteStdout, remoteStderr, resizeStream *spdystream.Stream
	if *stdin {
		headers.Set("streamType", "stdin")
		remoteStdin = createStream(conn, headers)
	}
	if *stdout {
		headers.Set("streamType", "stdout")
		remoteStdout = createStream(conn, headers)
	}
	if *stderr && !*tty {
		headers.Set("streamType", "stderr")
		remoteStderr = createStream(conn, headers)
	}
	if *tty && version >= 3 {
		h := http.Header{}
		h.Set("streamType", "resize")
		resizeStream = createStream(conn, h)
	}

	errorChan := make(chan []byte, 1)
	go func() {
		msg, _ := io.ReadAll(errorStream)
		errorChan <- msg
	}()
	if resizeStream != nil && *sizes != "" {
		go func() {
			enc := json.NewEncoder(resizeStream)
			for _, s := range strings.Split(*sizes, ",") {
				var w, h uint16
				if _, err := fmt.Sscanf(s, "%dx%d", &w, &h); err != nil {
					fail(127, "bad size %q", s)
				}
				_ = enc.Encode(&terminalSize{Width: w, Height: h})
			}
		}()
	}
	if remoteStdin != nil {
		go func() {
			_, _ = io.Copy(remoteStdin, os.Stdin)
			_ = remoteStdin.Close()
		}()
	}
	var wg sync.WaitGroup
	copyOut := func(dst io.Writer, src io.Reader) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(dst, src)
		}()
	}
	if remoteStdout != nil {
		copyOut(os.Stdout, remoteStdout)
	}
	if remoteStderr != nil {
		copyOut(os.Stderr, remoteStderr)
	}
	wg.Wait()
	msg := <-errorChan
	rep.ErrorStream = string(msg)
	if len(msg) == 0 {
		finish(0)
	}
	if version < 4 {
		fail(125, "error executing remote command: %s", msg)
	}
	// client-go errorDecoderV4.
	var status struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Details *struct {
			Causes []struct {
				Type    string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(msg, &status); err != nil {
		fail(125, "error stream protocol error: %v in %q", err, msg)
	}
	switch status.Status {
	case "Success":
		finish(0)
	case "Failure":
		if status.Reason == "NonZeroExitCode" && status.Details != nil {
			for _, c := range status.Details.Causes {
				if c.Type != "ExitCode" {
					continue
				}
				rc, err := strconv.ParseUint(c.Message, 10, 8)
				if err != nil {
					fail(125, "error stream protocol error: invalid exit code value %q", c.Message)
				}
				rep.Message = fmt.Sprintf("command terminated with exit code %d", rc)
				finish(int(rc))
			}
			fail(125, "error stream protocol error: no ExitCode cause given")
		}
		fail(125, "%s", status.Message)
	}
	fail(125, "error stream protocol error: unknown error")
}

func portForwardCmd(args []string) {
	fs := flag.NewFlagSet("portforward", flag.ExitOnError)
	count := fs.Int("count", 1, "forwarded connections, run concurrently on one session")
	protocols := fs.String("protocols", "portforward.k8s.io", "offered protocols")
	fs.StringVar(&reportPath, "report", "", "write a JSON report here")
	_ = fs.Parse(args)
	if fs.NArg() != 2 {
		fail(127, "usage: spdyclient portforward [flags] URL PORT")
	}
	port := fs.Arg(1)
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(127, "read stdin: %v", err)
	}
	conn, _ := upgrade(fs.Arg(0), strings.Split(*protocols, ","))

	outputs := make([][]byte, *count)
	errs := make([]string, *count)
	var wg sync.WaitGroup
	var createLock sync.Mutex
	for i := 0; i < *count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// client-go PortForwarder.handleConnection.
			headers := http.Header{}
			headers.Set("streamType", "error")
			headers.Set("port", port)
			headers.Set("requestID", strconv.Itoa(i))
			createLock.Lock()
			errorStream := createStream(conn, headers)
			_ = errorStream.Close()
			headers.Set("streamType", "data")
			dataStream := createStream(conn, headers)
			createLock.Unlock()
			errorChan := make(chan []byte, 1)
			go func() {
				msg, _ := io.ReadAll(errorStream)
				errorChan <- msg
			}()
			go func() {
				for off := 0; off < len(input); off += 32 * 1024 {
					end := off + 32*1024
					if end > len(input) {
						end = len(input)
					}
					if _, err := dataStream.Write(input[off:end]); err != nil {
						break
					}
				}
				_ = dataStream.Close()
			}()
			out, _ := io.ReadAll(dataStream)
			_ = dataStream.Reset()
			outputs[i] = out
			errs[i] = string(<-errorChan)
		}(i)
	}
	wg.Wait()
	failed := false
	for i := range outputs {
		_, _ = os.Stdout.Write(outputs[i])
		if errs[i] != "" {
			failed = true
			fmt.Fprintf(os.Stderr, "request %d: %s\n", i, strings.TrimSpace(errs[i]))
			rep.ErrorStream += errs[i]
		}
	}
	if failed {
		finish(1)
	}
	finish(0)
}

func main() {
	if len(os.Args) < 2 {
		fail(127, "usage: spdyclient exec|portforward ...")
	}
	switch os.Args[1] {
	case "exec":
		execCmd(os.Args[2:])
	case "portforward":
		portForwardCmd(os.Args[2:])
	default:
		fail(127, "unknown command %q", os.Args[1])
	}
}
