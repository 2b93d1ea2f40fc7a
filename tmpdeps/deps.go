package tmpdeps

import (
	_ "github.com/coregx/ahocorasick"
	_ "github.com/dlclark/regexp2/v2"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/valyala/fastjson"
	_ "go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite"
	_ "www.velocidex.com/golang/evtx"
	_ "github.com/chromedp/chromedp"
)
