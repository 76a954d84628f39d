/* 赛马榜: the month's ranking as an Apache ECharts bar chart (vendored in this directory),
   drawn from the figures the page carries in #board-data; no request leaves the service. */
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("board-chart");
    var source = document.getElementById("board-data");
    if (!holder || !source || typeof echarts === "undefined") { return; }
    var board = JSON.parse(source.textContent);
    var rows = board.rows.slice().reverse(); // the first rank on top
    var labels = rows.map(function (r) { return r.rank + ". " + r.team_name + "  " + r.change; });
    var series;
    var kinds = board.milestones && board.milestones.kinds ? board.milestones.kinds : [];
    if (kinds.length) {
      series = kinds.map(function (kind, i) {
        return {
          name: board.milestones.labels[i], type: "bar", stack: "points",
          data: board.milestones.series[kind].slice().reverse()
        };
      });
      series.push({
        name: "合计", type: "bar", stack: "total-label", barGap: "-100%",
        data: rows.map(function (r) { return r.points; }),
        itemStyle: { color: "transparent" },
        label: { show: true, position: "insideRight", formatter: "{c} 分", color: "#222" }
      });
    } else {
      series = [{
        name: "本月得分", type: "bar",
        data: rows.map(function (r) { return r.points; }),
        label: { show: true, position: "right", formatter: "{c} 分" }
      }];
    }
    var legendNames = kinds.length ? board.milestones.labels : [];
    fitHeight(holder, gridTop(legendNames, holder.clientWidth), rows.length);
    var chart = echarts.init(holder, null, { renderer: board.renderer === "svg" ? "svg" : "canvas" });
    chart.setOption({
      animation: false,
      title: { text: "赛马榜 " + board.month, left: "center" },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: kinds.length ? { top: 28, data: board.milestones.labels } : undefined,
      toolbox: {
        feature: {
          saveAsImage: {
            title: "保存为图片", name: "赛马榜-" + board.month,
            type: board.renderer === "svg" ? "svg" : "png", pixelRatio: 2
          }
        }
      },
      grid: { left: 8, right: 48, top: gridTop(legendNames, chart.getWidth()), bottom: 8,
              containLabel: true },
      xAxis: { type: "value", name: "分", minInterval: 1 },
      yAxis: { type: "category", data: labels },
      series: series
    });
    window.approvalflowBoard = { chart: chart, board: board };
    window.addEventListener("resize", function () {
      var top = gridTop(legendNames, holder.clientWidth);
      fitHeight(holder, top, rows.length);
      chart.resize();
      chart.setOption({ grid: { top: top } });
    });
  }
  // A legend of many lines (a narrow screen, a county's own milestones) would leave the bars
  // no room: the chart grows to keep 18 px a team below it.
  function fitHeight(holder, top, teams) {
    var wanted = top + Math.max(teams, 4) * 18 + 40;
    if (holder.clientHeight < wanted) { holder.style.height = wanted + "px"; }
  }
  // ECharts wraps a long legend onto more lines but does not move the plot down for them: the
  // bars start below the legend's last line, counted here as ECharts lays the items out (a
  // 25 px icon, 5 px to its 12 px text, 10 px between items; 24 px a line).
  var LEGEND_TOP = 28, LEGEND_LINE = 24;
  function gridTop(names, width) {
    if (!names.length) { return 40; }
    var lines = 1, x = 0, room = Math.max(width - 20, 100);
    names.forEach(function (name) {
      var item = 25 + 5 + textWidth(name) + 10;
      if (x > 0 && x + item > room) { lines += 1; x = 0; }
      x += item;
    });
    return LEGEND_TOP + lines * LEGEND_LINE + 12;
  }
  function textWidth(text) {
    var width = 0;
    for (var i = 0; i < text.length; i += 1) {
      width += text.charCodeAt(i) > 0x2e7f ? 12 : 7; // a CJK character, or a Latin one
    }
    return width;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
