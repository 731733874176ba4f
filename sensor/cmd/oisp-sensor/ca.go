package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/spf13/cobra"
)

// BundleFile is the combined trust bundle (system roots + the sensor CA)
// written next to the CA, for SSL_CERT_FILE and REQUESTS_CA_BUNDLE, which
// replace the system roots rather than add to them.
const BundleFile = "ca-bundle.pem"

// systemBundles are where operating systems keep their PEM root bundle,
// in the order crypto/x509 looks for them.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine, macOS
}

func newCACmd(g *globals) *cobra.Command {
	var dirFlag string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show, export and explain how to trust the sensor's local CA",
		Long: `The capture proxy decrypts traffic to AI providers by presenting
certificates signed by a local certificate authority, created on first use
in your config directory (ECDSA P-256; the private key is readable only by
you and never leaves this machine). Clients must trust that CA:

  oisp-sensor ca path      print the CA certificate's path
  oisp-sensor ca show      describe the CA and how to trust it
  oisp-sensor ca export    write the CA certificate (PEM) to stdout or --out
  oisp-sensor ca bundle    write system roots + the CA into one file, for
                           SSL_CERT_FILE / REQUESTS_CA_BUNDLE`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	caFlag(cmd.PersistentFlags(), &dirFlag)
	load := func() (*ca.CA, error) {
		c, err := loadCA(dirFlag)
		if err != nil {
			return nil, &exitError{code: 1, err: err}
		}
		return c, nil
	}

	cmd.AddCommand(&cobra.Command{
		Use:   "path",
		Short: "Print the path of the CA certificate (created on first use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, c.CertPath())
			return nil
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Describe the CA and how to make clients trust it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			cert := c.Certificate()
			sum := sha256.Sum256(cert.Raw)
			fmt.Fprintf(g.stdout, "certificate:  %s\n", c.CertPath())
			fmt.Fprintf(g.stdout, "private key:  %s (owner-only)\n", filepath.Join(c.Dir(), ca.KeyFile))
			fmt.Fprintf(g.stdout, "subject:      %s\n", cert.Subject.String())
			fmt.Fprintf(g.stdout, "sha256:       %s\n", colonHex(sum[:]))
			fmt.Fprintf(g.stdout, "valid:        %s to %s\n", cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
			fmt.Fprintln(g.stdout)
			writeTrustInstructions(g.stdout, c.CertPath(), filepath.Join(c.Dir(), BundleFile))
			return nil
		},
	})

	var exportOut string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the CA certificate in PEM form to standard output or --out FILE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			if exportOut == "" || exportOut == "-" {
				_, err := g.stdout.Write(c.CertPEM())
				return err
			}
			if err := writeFileAtomic(exportOut, c.CertPEM(), 0o644); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(g.stderr, "wrote the sensor CA certificate to %s\n", exportOut)
			return nil
		},
	}
	export.Flags().StringVarP(&exportOut, "out", "o", "", "write to `FILE` instead of standard output")
	cmd.AddCommand(export)

	var bundleOut string
	bundle := &cobra.Command{
		Use:   "bundle",
		Short: "Write the system's root certificates plus the sensor CA into one PEM file and print its path",
		Long: `SSL_CERT_FILE (OpenSSL, curl, Go, Python's httpx) and REQUESTS_CA_BUNDLE
(Python requests) replace the system's trusted roots instead of adding to
them. Pointing them at the sensor CA alone would break every site the proxy
does not intercept; point them at this bundle instead: the system roots
followed by the sensor CA. Re-run it after the system bundle changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load()
			if err != nil {
				return err
			}
			path, n, from, err := writeBundle(c, bundleOut)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if from == "" {
				fmt.Fprintln(g.stderr, "oisp-sensor: no system root bundle found; the bundle holds only the sensor CA")
			} else {
				fmt.Fprintf(g.stderr, "%d system roots from %s + the sensor CA\n", n, from)
			}
			fmt.Fprintln(g.stdout, path)
			return nil
		},
	}
	bundle.Flags().StringVarP(&bundleOut, "out", "o", "", "write to `FILE` (default: "+BundleFile+" next to the CA)")
	cmd.AddCommand(bundle)
	return cmd
}

func colonHex(b []byte) string {
	var s strings.Builder
	for i, x := range b {
		if i > 0 {
			s.WriteByte(':')
		}
		fmt.Fprintf(&s, "%02X", x)
	}
	return s.String()
}

// writeTrustInstructions tells a person how to make clients trust the CA.
func writeTrustInstructions(w io.Writer, certPath, bundlePath string) {
	fmt.Fprintf(w, `Trust it for one program (no system change):
  Node.js                  export NODE_EXTRA_CA_CERTS=%[1]s
  Python requests          export REQUESTS_CA_BUNDLE=%[2]s
  OpenSSL, curl, Go, httpx export SSL_CERT_FILE=%[2]s
  curl, one request        curl --cacert %[1]s ...
  (SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace the system roots: use the
   combined bundle from 'oisp-sensor ca bundle', not the CA file alone.)

Trust it system-wide:
  Debian, Ubuntu   sudo cp %[1]s /usr/local/share/ca-certificates/oisp-sensor.crt && sudo update-ca-certificates
  Fedora, RHEL     sudo cp %[1]s /etc/pki/ca-trust/source/anchors/oisp-sensor.pem && sudo update-ca-trust
  macOS            sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %[1]s

Apps that pin certificates will refuse the proxy; leave their hosts out of
--intercept-host (they are tunnelled untouched).
`, certPath, bundlePath)
}

// systemRootsPEM reads the system's PEM root bundle. It honours an
// SSL_CERT_FILE that is not our own bundle, then the usual locations.
func systemRootsPEM(ours string) ([]byte, string) {
	cands := systemBundles
	if env := os.Getenv("SSL_CERT_FILE"); env != "" {
		if abs, err := filepath.Abs(env); err == nil && abs != ours {
			cands = append([]string{env}, cands...)
		}
	}
	if runtime.GOOS == "windows" {
		return nil, ""
	}
	for _, p := range cands {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return b, p
		}
	}
	return nil, ""
}

// writeBundle writes the system roots plus the sensor CA to out (default:
// BundleFile next to the CA) and returns the path, the number of system
// certificates included and the file they came from.
func writeBundle(c *ca.CA, out string) (string, int, string, error) {
	if out == "" {
		out = filepath.Join(c.Dir(), BundleFile)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", 0, "", err
	}
	sys, from := systemRootsPEM(abs)
	ourDER := c.Certificate().Raw
	var buf bytes.Buffer
	n := 0
	for rest := sys; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" || bytes.Equal(blk.Bytes, ourDER) {
			continue
		}
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})
		n++
	}
	fmt.Fprintf(&buf, "# oisp-sensor local CA (%s)\n", c.CertPath())
	buf.Write(c.CertPEM())
	if err := writeFileAtomic(abs, buf.Bytes(), 0o644); err != nil {
		return "", 0, "", err
	}
	return abs, n, from, nil
}

// writeFileAtomic replaces path with data, so a client reading it never
// sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), perm)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
