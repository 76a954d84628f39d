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
      grid: { left: 8, right: 48, top: kinds.length ? 64 : 40, bottom: 8, containLabel: true },
      xAxis: { type: "value", name: "分", minInterval: 1 },
      yAxis: { type: "category", data: labels },
      series: series
    });
    window.approvalflowBoard = { chart: chart, board: board };
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
